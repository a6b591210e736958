"""Pretrained Transformer encoders from a local Hugging Face model folder, converted into nlpkit's own Transformer
code (litgpt's way): ``config.json`` becomes :class:`~nlpkit.models.encoders.transformer.TransformerEncoder` arguments,
``model.safetensors`` is renamed into its weights by a name map, and ``tokenizer.json`` comes along as the task's
tokenizer.

Families: BERT (``bert``: BERT, MiniLM, bge, sentence-transformers' BERT models) and RoBERTa (``roberta``,
``xlm-roberta``, ``camembert``): post-LayerNorm blocks, exact GELU, learned absolute positions (RoBERTa's start
after the padding id), a token-type embedding, the config's LayerNorm epsilon. A sentence-transformers folder's
``1_Pooling/config.json`` says how its sentences are pooled, and ``sentence_bert_config.json`` how long they are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nlpkit.models.encoders.transformer import TransformerEncoder
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.errors import ConfigError, DataError

#: ``model_type`` -> the prefix its task models put before the encoder's weights
FAMILIES = {"bert": "bert.", "roberta": "roberta.", "xlm-roberta": "roberta.", "camembert": "roberta."}
#: the families whose learned positions start after the padding id
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert"}
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
#: a sentence-transformers pooling mode -> the pooling nlpkit's tasks name it by
POOLING_MODES = {
    "pooling_mode_cls_token": "first",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
}
WEIGHTS = "model.safetensors"

_EMBEDDINGS = {
    "embeddings.word_embeddings.weight": "token_embedding.weight",
    "embeddings.position_embeddings.weight": "position_embedding.weight",
    "embeddings.token_type_embeddings.weight": "token_type_embedding.weight",
    "embeddings.LayerNorm.weight": "embedding_norm.weight",
    "embeddings.LayerNorm.bias": "embedding_norm.bias",
}
_BLOCK = {
    "attention.output.dense": "attn.proj",
    "attention.output.LayerNorm": "ln_1",
    "intermediate.dense": "mlp.fc",
    "output.dense": "mlp.proj",
    "output.LayerNorm": "ln_2",
}
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(path, f"not readable JSON ({error})") from error
    if not isinstance(value, dict):
        raise DataError(path, "expected a JSON object")
    return value


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a Hugging Face model folder (it holds ``config.json``; an nlpkit export holds
    ``model.json``)."""
    folder = Path(path).expanduser()
    return (folder / "config.json").is_file() and not (folder / "model.json").is_file()


def model_folder(path: str | Path) -> Path:
    """``path`` as a Hugging Face model folder holding ``config.json``, ``model.safetensors`` and
    ``tokenizer.json``; a DataError naming the first one missing."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(folder, "not a folder: a pretrained encoder is read from a Hugging Face model folder")
    for name in ("config.json", WEIGHTS, "tokenizer.json"):
        if not (folder / name).is_file():
            raise DataError(folder, f"has no {name}: expected a Hugging Face model folder (config.json, {WEIGHTS}, "
                            "tokenizer.json)")  # fmt: skip
    return folder


#: the sentence-transformers modules this encoder and nlpkit's pooling reproduce (a unit-length vector is what
#: ``embed`` gives anyway); any other (a Dense layer, say) would give other vectors
SENTENCE_MODULES = ("Transformer", "Pooling", "Normalize")


def folder_pooling(folder: Path) -> str:
    """How a sentence-transformers folder pools (``1_Pooling/config.json``); the first token (``[CLS]``) else. A
    pooling mode or a module nlpkit does not reproduce is a DataError, not other vectors."""
    if (folder / "modules.json").is_file():
        for module in json.loads((folder / "modules.json").read_text("utf-8")):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind not in SENTENCE_MODULES:
                raise DataError(folder / "modules.json", f"a sentence-transformers {kind} module is not supported "
                                f"(only {', '.join(SENTENCE_MODULES)})")  # fmt: skip
    path = folder / "1_Pooling" / "config.json"
    if not path.is_file():
        return "first"
    modes = {mode for mode, on in _read_json(path).items() if mode.startswith("pooling_mode_") and on is True}
    if len(modes) != 1 or not modes <= POOLING_MODES.keys():
        raise DataError(path, f"pooling {', '.join(sorted(modes)) or 'none'} is not supported: one of "
                        f"{', '.join(POOLING_MODES)}")  # fmt: skip
    return POOLING_MODES[modes.pop()]


def transformer_arguments(config: dict[str, Any], source: object) -> dict[str, Any]:
    """:class:`TransformerEncoder` arguments of a Hugging Face ``config.json``; a ConfigError for a family or
    setting this code does not run."""
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise ConfigError(f"{source}: model_type {model_type!r} is not supported (supported: {', '.join(FAMILIES)})")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{source}: position_embedding_type {config['position_embedding_type']!r} is not supported")
    activation = ACTIVATIONS.get(config.get("hidden_act", "gelu"))
    if activation is None:
        raise ConfigError(f"{source}: hidden_act {config.get('hidden_act')!r} is not supported")
    try:
        offset = int(config.get("pad_token_id") or 1) + 1 if model_type in OFFSET_POSITIONS else 0
        return {
            "d_model": int(config["hidden_size"]),
            "num_heads": int(config["num_attention_heads"]),
            "num_layers": int(config["num_hidden_layers"]),
            "dim_feedforward": int(config["intermediate_size"]),
            "dropout": float(config.get("hidden_dropout_prob", 0.1)),
            "max_length": int(config["max_position_embeddings"]) - offset,
            "positions": "learned",
            "norm_first": False,
            "layer_norm_eps": float(config.get("layer_norm_eps", 1e-12)),
            "activation": activation,
            "token_types": int(config.get("type_vocab_size", 2)),
            "position_offset": offset,
        }
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{source}: config.json lacks or garbles {error}") from error


def convert_weights(state: dict[str, Tensor], prefix: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """A Hugging Face encoder's weights as nlpkit's names, and the weights it does not take (a pooler, a masked-LM
    head), by their names without the model's prefix. Query, key and value go into one ``qkv`` projection."""
    ours: dict[str, Tensor] = {}
    unused: dict[str, Tensor] = {}
    parts: dict[tuple[str, str], dict[str, Tensor]] = {}  # (layer, weight|bias) -> query/key/value
    for name, value in state.items():
        name = name.removeprefix(prefix).replace("LayerNorm.gamma", "LayerNorm.weight")
        name = name.replace("LayerNorm.beta", "LayerNorm.bias")
        layer = _LAYER.fullmatch(name)
        if name in _EMBEDDINGS:
            ours[_EMBEDDINGS[name]] = value
        elif layer and layer.group(2).startswith("attention.self."):
            parts.setdefault((layer.group(1), layer.group(3)), {})[layer.group(2).rsplit(".", 1)[1]] = value
        elif layer and layer.group(2) in _BLOCK:
            ours[f"blocks.{layer.group(1)}.{_BLOCK[layer.group(2)]}.{layer.group(3)}"] = value
        elif not name.endswith("position_ids"):
            unused[name] = value
    for (index, kind), projections in parts.items():
        ours[f"blocks.{index}.attn.qkv.{kind}"] = torch.cat([projections[p] for p in ("query", "key", "value")])
    return ours, unused


class PretrainedEncoder(TransformerEncoder):
    """A BERT- or RoBERTa-family encoder from a local Hugging Face model folder, run by nlpkit's Transformer code.

    The folder's ``tokenizer.json`` becomes the task's tokenizer (the data module trains none), and a checkpoint
    keeps the architecture (``config``) and the weights, so loading one never needs the folder again.

    :param path: the model folder (``config.json``, ``model.safetensors``, ``tokenizer.json``)
    :param config: the folder's ``config.json`` as a dict (what a checkpoint rebuilds the encoder from)
    :param pooling: how a task pools this encoder's states when its own ``pooling`` is ``auto`` (default: the
        folder's ``1_Pooling``, else ``first``: ``[CLS]``)
    :param dropout: instead of the config's ``hidden_dropout_prob``
    :param max_length: the longest input in tokens (default: ``sentence_bert_config.json``'s ``max_seq_length``,
        else every position the model has)
    """

    tunable_args = (*TransformerEncoder.tunable_args, "path")  # the folder: ``config`` is the architecture

    def __init__(
        self,
        vocab_size: int,
        path: str | None = None,
        config: dict[str, Any] | None = None,
        pooling: str | None = None,
        dropout: float | None = None,
        max_length: int | None = None,
        feature_dim: int = 0,
    ) -> None:
        if path is None and config is None:
            raise ConfigError("pretrained encoder: set path to a Hugging Face model folder")
        folder = model_folder(path) if path is not None else None
        if config is None:
            config = _read_json(folder / "config.json")  # type: ignore[operator]
        arguments = transformer_arguments(config, folder or "pretrained encoder config")
        if dropout is not None:
            arguments["dropout"] = dropout
        positions = arguments["max_length"]
        super().__init__(int(config["vocab_size"]), feature_dim=feature_dim, **arguments)
        if vocab_size > self.vocab_size:
            raise ConfigError(f"the tokenizer has {vocab_size} ids, the pretrained embedding {self.vocab_size} rows")
        if max_length is None and folder is not None and (folder / "sentence_bert_config.json").is_file():
            max_length = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
        if max_length is not None and not 0 < int(max_length) <= positions:
            raise ConfigError(f"max_length must be between 1 and the model's {positions} positions, not {max_length}")
        self.max_length = int(max_length or positions)
        self.config = config
        self.sentence_pooling = pooling or (folder_pooling(folder) if folder is not None else "first")
        self.token_embedding.padding_idx = config.get("pad_token_id", 0)
        #: weights of the folder this encoder does not hold (a pooler, a masked-LM head), for tasks that want them
        self.unused_weights: dict[str, Tensor] = {}
        if folder is not None:
            self._load(folder)

    def _load(self, folder: Path) -> None:
        """Convert and copy the folder's weights; one line naming what does not fit."""
        from safetensors.torch import load_file

        try:
            state = load_file(str(folder / WEIGHTS))
        except Exception as error:  # safetensors raises its own error types
            raise DataError(folder / WEIGHTS, f"not a readable safetensors file ({error})") from error
        ours, self.unused_weights = convert_weights(state, FAMILIES[self.config["model_type"]])
        own = {name: value for name, value in self.state_dict().items() if not name.startswith("feature_projection.")}
        for side, names in (("lacks", set(own) - set(ours)), ("has extra", set(ours) - set(own))):
            if names:
                raise DataError(folder / WEIGHTS, f"{side} weights {', '.join(sorted(names)[:3])} for the "
                                f"{self.config['model_type']} encoder its config.json describes")  # fmt: skip
        for name, value in ours.items():
            if own[name].shape != value.shape:
                shapes = f"{tuple(value.shape)}, config.json implies {tuple(own[name].shape)}"
                raise DataError(folder / WEIGHTS, f"{name} is {shapes}")
        self.load_state_dict({name: value.float() for name, value in ours.items()}, strict=False)  # checked above

    @classmethod
    def bundled_tokenizer(cls, arguments: dict[str, Any]) -> Tokenizer | None:
        """The folder's ``tokenizer.json`` (None when rebuilt from a checkpoint, which carries its own)."""
        path = arguments.get("path")
        return Tokenizer.load(model_folder(path) / "tokenizer.json") if path is not None else None

    def spec(self) -> dict[str, Any]:
        """The configuration a checkpoint rebuilds this encoder from: the architecture, not the folder."""
        spec = super().spec()
        arguments = {"config": self.config, "pooling": self.sentence_pooling, "max_length": self.max_length}
        spec["init_args"].update(path=None, **arguments)
        return spec
