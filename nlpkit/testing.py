"""Helpers for tests of nlpkit and of plugins: isolated plugin sets, tiny corpora, a few real training steps, and
:class:`EncoderContract`, the tests every encoder must pass."""

from __future__ import annotations

import csv
import json
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from nlpkit.plugin import loader as plugin_loading

POSITIVE = ["great", "wonderful", "brilliant", "moving", "funny", "superb", "charming"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious"]
SUBJECTS = ["the movie", "the film", "the plot", "the acting", "the ending", "the cast", "the soundtrack"]


def sentiment_corpus(size: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic ``(text, "pos"|"neg")`` pairs; a third are negated ("was not great" is negative).

    The same words appear with both labels, so a bag of words cannot reach full accuracy.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        positive = rng.random() < 0.5
        negated = rng.random() < 0.35
        adjective = rng.choice(POSITIVE if positive != negated else NEGATIVE)
        verb = rng.choice(["was", "is", "felt"])
        text = f"{rng.choice(SUBJECTS)} {verb} {'not ' if negated else ''}{adjective}"
        if rng.random() < 0.3:
            text += rng.choice([" overall", " to me", " honestly", " in the end"])
        rows.append((text, "pos" if positive else "neg"))
    return rows


STORY_PARTS = {
    "subject": ["the old sailor", "a young fox", "the baker", "my grandmother", "the quiet girl", "a tired soldier"],
    "verb": ["walked to", "ran past", "looked at", "sang near", "waited by", "dreamed of"],
    "place": ["the harbour", "the green hill", "the market", "the river", "the old bridge", "the lighthouse"],
    "time": ["at dawn", "in the rain", "before supper", "every sunday", "late at night", "in the spring"],
}


def story_corpus(size: int = 300, seed: int = 0) -> list[str]:
    """Synthetic one-line stories from a small grammar ("the baker waited by the river at dawn .")."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(STORY_PARTS[part]) for part in ("subject", "verb", "place", "time")) + " ."
        for _ in range(size)
    ]


def write_sentiment_files(
    directory: str | Path, train: int = 400, val: int = 100, seed: int = 0, label_noise: float = 0.0
) -> dict[str, Path]:
    """Write ``train.csv``, ``val.csv`` (text,label) and ``predict.txt`` (texts only) under ``directory``.

    ``label_noise`` flips that fraction of the labels at random, as annotators do, so no model should be sure.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    flip = {"pos": "neg", "neg": "pos"}
    for split, size, split_seed in (("train", train, seed), ("val", val, seed + 1)):
        rng = random.Random(f"label noise {split_seed}")  # not the corpus's own random stream
        rows = [
            (text, flip[label] if rng.random() < label_noise else label)
            for text, label in sentiment_corpus(size, split_seed)
        ]
        paths[split] = directory / f"{split}.csv"
        with paths[split].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    paths["predict"] = directory / "predict.txt"
    paths["predict"].write_text(
        "the film was brilliant\nthe plot was not great\nthe acting was dull\nthe ending was not boring\n",
        encoding="utf-8",
    )
    return paths


@contextmanager
def isolated_plugins(*modules: Any, include_core: bool = True) -> Iterator[plugin_loading.Plugins]:
    """Make the process-wide plugins exactly ``modules`` (objects or import paths), plus the core by default.

    Plugins registered this way are named after their module; the previous plugin set returns on exit.
    """
    points = [EntryPoint("core", "nlpkit.builtins", plugin_loading.ENTRY_POINT_GROUP)] if include_core else []
    for module in modules:
        path = module if isinstance(module, str) else module.__name__
        points.append(EntryPoint(path.rsplit(".", 1)[-1], path, plugin_loading.ENTRY_POINT_GROUP))
    previous = plugin_loading._loaded
    loaded = plugin_loading.discover(points)
    plugin_loading.reset_plugins(loaded)
    try:
        yield loaded
    finally:
        plugin_loading.reset_plugins(previous)


def fit_tiny(task: Any, datamodule: Any, max_steps: int = 20, **trainer_options: Any) -> Any:
    """Train ``task`` for ``max_steps`` real Lightning steps on CPU, quietly; returns the Trainer."""
    import pytorch_lightning as pl

    options: dict[str, Any] = {
        "max_steps": max_steps,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        **trainer_options,
    }
    trainer = pl.Trainer(**options)
    trainer.fit(task, datamodule=datamodule)
    return trainer


def require_cached(path: str | Path, command: str) -> Path:
    """``path`` (a fetched corpus or pretrained weights) when it exists; else skip the test naming ``command``, the
    one that fetches it, or fail under ``CI=true``, where nothing may be skipped for want of a download."""
    import os

    import pytest

    path = Path(path)
    if not path.exists():
        message = f"{path} is not cached: run `{command}`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def tiny_pretrained_model(
    directory: str | Path, family: str = "bert", masked_lm: bool = False, pooling: str | None = "mean"
) -> Path:
    """A Hugging Face model folder of a tiny random model, as ``transformers`` saves one (``config.json``,
    ``model.safetensors``) with a ``tokenizer.json`` trained on :func:`sentiment_corpus`: ``bert`` (uncased
    WordPiece, ``[CLS] ... [SEP]``) or ``roberta`` (byte-level BPE without a prefix space, ``<s> ... </s>``,
    positions after the padding id); ``masked_lm`` saves the model with its masked-LM head; ``pooling`` writes a
    sentence-transformers ``1_Pooling/config.json``. Needs ``transformers`` and ``tokenizers`` (the ``test`` extra)."""
    import torch
    import transformers
    from tokenizers import Tokenizer as HuggingFaceTokenizer
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

    transformers.utils.logging.disable_progress_bar()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    texts = [text for text, _ in sentiment_corpus(300)]
    if family == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tokenizer = HuggingFaceTokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=120, special_tokens=specials)
        template = ("[CLS]", 2), ("[SEP]", 3)
    else:
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tokenizer = HuggingFaceTokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # as roberta-base's
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=alphabet)
        template = ("<s>", 0), ("</s>", 2)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    (start, start_id), (end, end_id) = template
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{start} $A {end}", special_tokens=[(start, start_id), (end, end_id)]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
    if family == "bert":
        config = transformers.BertConfig(vocab_size=tokenizer.get_vocab_size(), max_position_embeddings=64, **sizes)
    else:
        config = transformers.RobertaConfig(
            vocab_size=tokenizer.get_vocab_size(), max_position_embeddings=66, pad_token_id=1, **sizes
        )
    torch.manual_seed(0)
    architecture = transformers.AutoModelForMaskedLM if masked_lm else transformers.AutoModel
    architecture.from_config(config).save_pretrained(folder)
    if pooling is not None:
        (folder / "1_Pooling").mkdir(exist_ok=True)
        modes = {
            f"pooling_mode_{mode}": name == pooling
            for mode, name in (("cls_token", "first"), ("mean_tokens", "mean"), ("max_tokens", "max"))
        }
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **modes}))
    return folder


class EncoderContract:
    """The encoder contract as pytest tests: subclass it in a test module and set ``make_encoder``.

    ``make_encoder`` builds the encoder from a vocabulary size (a class or a ``functools.partial``); pytest
    collects the inherited tests (name the subclass ``Test...``). They check what tasks rely on: the output
    shape, that padding on either side never changes a sequence's states, that ``is_causal`` tells the truth,
    that a causal encoder's cached step-by-step decoding equals recomputing everything, and that ``spec()``
    rebuilds the same module.
    """

    make_encoder: Callable[[int], Any]
    vocab_size = 23

    def _encoder(self, seed: int = 0) -> Any:
        import torch

        torch.manual_seed(seed)
        return type(self).make_encoder(self.vocab_size).eval()

    def _sequences(self, lengths: list[int], seed: int = 0) -> list[list[int]]:
        import torch

        generator = torch.Generator().manual_seed(seed)
        return [torch.randint(4, self.vocab_size, (n,), generator=generator).tolist() for n in lengths]

    @staticmethod
    def _alone(encoder: Any, sequence: list[int]) -> Any:
        import torch

        tokens = torch.tensor([sequence])
        return encoder(tokens, torch.ones_like(tokens, dtype=torch.bool))[0]

    def test_states_have_the_declared_shape(self) -> None:
        """``(B, T)`` ids and mask give ``(B, T, output_dim)`` finite states."""
        import torch

        encoder = self._encoder()
        tokens = torch.tensor(self._sequences([6, 6]))
        with torch.no_grad():
            states = encoder(tokens, torch.ones_like(tokens, dtype=torch.bool))
        assert states.shape == (2, 6, encoder.output_dim) and states.isfinite().all()

    def test_padding_never_changes_a_sequence(self) -> None:
        """Left or right padding (and an all-padding row) leaves every real position's state as it was alone."""
        import torch

        from nlpkit.models.padding import pad

        encoder = self._encoder()
        sequences = self._sequences([5, 9, 1, 3])
        for left in (False, True):
            tokens, mask = pad([*sequences, []], left=left)
            with torch.no_grad():
                states = encoder(tokens, mask)
                for row, sequence in enumerate(sequences):
                    torch.testing.assert_close(
                        states[row][mask[row]], self._alone(encoder, sequence), atol=1e-5, rtol=0
                    )

    def test_is_causal_tells_what_a_change_reaches(self) -> None:
        """Changing token t changes position t; it changes earlier positions exactly when the encoder is not causal."""
        import torch

        encoder = self._encoder()
        tokens = torch.tensor(self._sequences([10, 10], seed=3))
        changed = tokens.clone()
        changed[:, 6] = (tokens[:, 6] - 3) % (self.vocab_size - 4) + 4  # another token that is not special
        mask = torch.ones_like(tokens, dtype=torch.bool)
        with torch.no_grad():
            before, after = encoder(tokens, mask), encoder(changed, mask)
        assert (before[:, 6] - after[:, 6]).abs().amax() > 1e-6
        reaches_past = bool((before[:, :6] - after[:, :6]).abs().amax() > 0)
        assert reaches_past is not encoder.is_causal

    def test_cached_decoding_equals_recomputation(self) -> None:
        """A causal encoder's ``step`` over a cache, prompt then token by token, gives the states of one pass."""
        import torch

        encoder = self._encoder()
        if not encoder.is_causal:
            return
        from nlpkit.models.padding import pad

        history = self._sequences([5, 1, 3])
        tokens, mask = pad(history, left=True)
        cache = encoder.init_cache(len(history))
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            states = encoder.step(tokens, mask, cache)
            steps = [[states[row][mask[row]]] for row in range(len(history))]
            for _ in range(6):
                token = torch.randint(4, self.vocab_size, (len(history), 1), generator=generator)
                state = encoder.step(token, torch.ones_like(token, dtype=torch.bool), cache)
                for row in range(len(history)):
                    history[row].append(int(token[row]))
                    steps[row].append(state[row])
            for row, sequence in enumerate(history):
                torch.testing.assert_close(torch.cat(steps[row]), self._alone(encoder, sequence), atol=1e-5, rtol=0)

    def test_spec_rebuilds_the_same_encoder(self) -> None:
        """``spec()`` names the class and arguments that build an identical module (what checkpoints rely on)."""
        import importlib

        import torch

        encoder = self._encoder(seed=5)
        spec = encoder.spec()
        module, _, name = spec["class_path"].rpartition(".")
        torch.manual_seed(5)
        rebuilt = getattr(importlib.import_module(module), name)(self.vocab_size, **spec["init_args"]).eval()
        assert type(rebuilt) is type(encoder)
        for (key, value), (_, again) in zip(encoder.state_dict().items(), rebuilt.state_dict().items(), strict=True):
            torch.testing.assert_close(value, again, msg=key)


def check_export(
    task: Any, inputs: list[Any], directory: str | Path, format: str = "onnx", tolerance: float = 1e-4
) -> Any:
    """Export ``task`` to ``directory``, load the export, and assert that on ``inputs`` (one batch, with padding)
    its outputs match the eager task's: floats within ``tolerance``, integers (decoded tags) exactly. Returns the
    loaded export."""
    import torch

    import nlpkit
    from nlpkit.deploy.export import batch_of, compare_outputs, export

    export(task, directory, format)  # type: ignore[arg-type]
    loaded = nlpkit.load(directory)
    assert loaded.runtime is not None, "the export loaded without its runtime"
    with torch.inference_mode(), task.evaluating():
        batch = batch_of(task, inputs)
        difference, mismatches = compare_outputs(task.outputs_of(batch), loaded.outputs_of(batch))
    assert difference <= tolerance, f"export differs from eager by {difference:.2e}"
    assert mismatches == 0, f"{mismatches} decoded positions of the export differ from eager"
    return loaded


class ServerProcess:
    """``nlpkit serve MODEL`` in a subprocess on a free port, and requests to it over HTTP (for tests of plugins
    whose tasks are served)."""

    def __init__(self, model: str | Path, *options: str) -> None:
        with socket.socket() as probe:  # a free port: bind to port 0, read it, release it
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "nlpkit", "serve", str(model), "--port", str(self.port), *options]
        # a file, not a pipe (a full pipe would stall a chatty server); it lives as long as the server
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.process.kill()
        raise AssertionError(f"the server did not start: {self.stderr()}")

    def request(self, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """Status and decoded JSON body (the raw text for anything else) of a GET, or a POST of ``body``."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw, kind = response.status, response.read().decode(), response.headers["content-type"]
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read().decode(), error.headers["content-type"]
        return status, json.loads(raw) if kind == "application/json" else raw

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path``."""
        return self.request(path)

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        """POST ``payload`` as JSON to ``path``."""
        return self.request(path, json.dumps(payload).encode())

    def stop(self) -> None:
        """SIGTERM; the server finishes what is in flight, then ends by the signal, as uvicorn does."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == -signal.SIGTERM, self.stderr()

    def stderr(self) -> str:
        """The end of what the server wrote to standard error."""
        self.log.seek(0)
        return self.log.read()[-2000:]
