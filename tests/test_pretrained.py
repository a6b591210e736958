"""Pretrained encoders from Hugging Face model folders: converted weights give transformers' own hidden states,
tokenizer.json files work as nlpkit tokenizers, and a bad folder is one line naming what is wrong."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from nlpkit import pad
from nlpkit.cli.main import main
from nlpkit.models.encoders.pretrained import PretrainedEncoder
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.errors import ConfigError
from nlpkit.testing import require_cached, tiny_pretrained_model, write_sentiment_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from data.pretrained import pretrained_dir

transformers = pytest.importorskip("transformers")

TEXTS = ["the film was great", "a dull and clumsy ending of the movie", "superb", "the cast felt charming overall"]


@pytest.fixture(scope="module", params=["bert", "roberta"])
def folder(request, tmp_path_factory) -> Path:
    return tiny_pretrained_model(tmp_path_factory.mktemp(request.param), request.param)


def hugging_face_states(folder: Path, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """nlpkit's and transformers' last hidden states of ``texts`` (right-padded, as transformers expects), and
    the mask."""
    tokenizer = Tokenizer.load(folder)
    ours = PretrainedEncoder(tokenizer.vocab_size, path=str(folder)).eval()
    reference = transformers.AutoModel.from_pretrained(folder).eval()
    tokens, mask = pad(tokenizer.encode_inputs(texts))
    with torch.no_grad():
        expected = reference(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
        return ours(tokens, mask), expected, mask


def test_converted_weights_give_transformers_hidden_states(folder: Path) -> None:
    ours, expected, mask = hugging_face_states(folder, TEXTS)
    assert_close(ours[mask], expected[mask], atol=1e-5, rtol=0)


def test_the_real_minilm_gives_transformers_hidden_states() -> None:
    folder = require_cached(pretrained_dir() / "all-MiniLM-L6-v2", "make pretrained")
    ours, expected, mask = hugging_face_states(folder, [*TEXTS, "Ada Lovelace visited Oslo in 1842."])
    assert_close(ours[mask], expected[mask], atol=1e-5, rtol=0)
    encoder = PretrainedEncoder(30522, path=str(folder))
    assert (encoder.sentence_pooling, encoder.max_length) == ("mean", 256)  # 1_Pooling and sentence_bert_config


def test_a_checkpoint_spec_holds_the_architecture_not_the_folder(folder: Path) -> None:
    encoder = PretrainedEncoder(Tokenizer.load(folder).vocab_size, path=str(folder))
    spec = encoder.spec()["init_args"]
    assert spec["path"] is None and spec["config"] == json.loads((folder / "config.json").read_text())
    rebuilt = PretrainedEncoder(encoder.vocab_size, **spec)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in encoder.state_dict().items()
    }
    assert (rebuilt.sentence_pooling, rebuilt.max_length) == (encoder.sentence_pooling, encoder.max_length)


def test_tokenizer_json_gives_its_own_special_tokens(folder: Path) -> None:
    tokenizer = Tokenizer.load(folder / "tokenizer.json", max_length=6)
    start, end = ("[CLS]", "[SEP]") if "[CLS]" in tokenizer.vocabulary() else ("<s>", "</s>")
    assert (tokenizer.bos_id, tokenizer.eos_id) == (tokenizer.token_id(start), tokenizer.token_id(end))
    assert tokenizer.closes_inputs and tokenizer.mask_id in tokenizer.special_ids()
    ids = tokenizer.encode_inputs(["the movie was not great at all, sadly"])[0]
    assert len(ids) == 6 and (ids[0], ids[-1]) == (tokenizer.bos_id, tokenizer.eos_id)
    assert [text.strip() for text in tokenizer.decode(tokenizer.encode_inputs(["the film was great"], 20))] == [
        "the film was great"
    ]
    assert Tokenizer.from_bytes(tokenizer.to_bytes(), max_length=6) == tokenizer
    words = tokenizer.encode_words(["the", "soundtrack", "unbelievably"])
    assert [piece for word in words for piece in word] == tokenizer.encode_plain(["the soundtrack unbelievably"])[0]
    starts = tokenizer.word_starts()  # every word after the first starts a word, in context, as in pretraining
    assert all(starts[word[0]] for word in words[1:]) and not all(starts[piece] for piece in words[2])


def write_folder(tmp_path: Path, change: str) -> Path:
    """A copy of a tiny BERT folder, broken as ``change`` says."""
    folder = shutil.copytree(tiny_pretrained_model(tmp_path / "source"), tmp_path / "model")
    if change == "gpt2":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    elif change.endswith(":lasttoken"):
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_lasttoken": True}))
    else:
        (folder / change).unlink()
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("config.json", r"model: has no config\.json: expected a Hugging Face model folder"),
        ("model.safetensors", r"model: has no model\.safetensors"),
        ("tokenizer.json", r"model: has no tokenizer\.json"),
        ("1_Pooling/config.json:lasttoken", r"config\.json: pooling pooling_mode_lasttoken is not supported"),
        ("gpt2", r"model_type 'gpt2' is not supported \(supported: bert, roberta"),
    ],
)
def test_a_bad_model_folder_is_one_line_and_exit_status_2(change, message, tmp_path, monkeypatch, capsys) -> None:
    folder = write_folder(tmp_path, change)
    files = write_sentiment_files(tmp_path / "data", train=20, val=10)
    monkeypatch.chdir(tmp_path)
    status = main(["fit", "--model", "text-classification", "--model.encoder", "pretrained",
                   "--model.encoder.path", str(folder), "--data", "classification",
                   "--data.train_path", str(files["train"]), "--trainer.max_steps", "1"])  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and "Traceback" not in error[0]
    assert re.search(message, error[0]), error[0]


def test_a_tokenizer_without_a_template_or_padding_takes_its_named_tokens(tmp_path) -> None:
    """GPT-2's kind: no post-processor, one end-of-text token, no padding token (its end token pads)."""
    from tokenizers import Tokenizer as HuggingFaceTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    library = HuggingFaceTokenizer(models.BPE())
    library.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    library.train_from_iterator(TEXTS * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"]))
    tokenizer = Tokenizer.from_bytes(library.to_str().encode())
    end = tokenizer.token_id("<|endoftext|>")
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.closes_inputs) == (end, end, end, False)
    with pytest.raises(ConfigError, match="the tokenizer has no mask token"):
        _ = tokenizer.mask_id
