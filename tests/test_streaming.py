"""Streamed training files: every record once per pass across processes and workers, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from torch.utils.data import DataLoader

from nlpkit.data.streaming import StreamedExamples
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.tokenizers import TokenizerOptions
from nlpkit.plugin.errors import ConfigError
from nlpkit.testing import fit_tiny, sentiment_corpus


def numbered(shard: int, shards: int):
    for number in range(shard, 103, shards):
        yield {"number": number, "length": number % 9}


def collect(batch: list[dict]) -> list[int]:
    return [example["number"] for example in batch]


@pytest.mark.parametrize(("replicas", "workers"), [(1, 0), (2, 0), (2, 2)])
def test_a_pass_serves_every_record_once_across_processes_and_workers(replicas: int, workers: int) -> None:
    seen = []
    for rank in range(replicas):
        stream = StreamedExamples(numbered, collect, lambda x: x, lambda x: None, 4, num_replicas=replicas, rank=rank,
                                  buffer_size=10)  # fmt: skip
        shards = replicas * max(workers, 1)
        own = [n for n in range(103) if n % shards // max(workers, 1) == rank]
        batches = iter(DataLoader(stream, batch_size=None, num_workers=workers))
        first_pass: list[int] = []
        while len(first_pass) < len(own):
            first_pass += next(batches)
        assert sorted(first_pass) == own  # the stream goes on with the next pass after this
        seen += first_pass
    assert sorted(seen) == list(range(103))


def write_corpus(path: Path, copies: int) -> Path:
    block = "".join(f'"{text}",{label}\n' for text, label in sentiment_corpus(10_000))
    with path.open("w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        for _ in range(copies):
            handle.write(block)
    return path


def test_fit_from_a_streamed_file_needs_max_steps(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "train.csv", 1)
    data = ClassificationData(train_path=str(path), streaming=True, tokenizer=TokenizerOptions(vocab_size=100))
    task = TextClassificationTask(encoder=lambda vocab: LSTMEncoder(vocab, embedding_dim=8, hidden_size=8))
    trainer = fit_tiny(task, data, max_steps=15)
    assert trainer.global_step == 15
    again = ClassificationData(train_path=str(path), streaming=True, tokenizer=TokenizerOptions(vocab_size=100))
    with pytest.raises(ConfigError, match=r"needs trainer\.max_steps"):
        fit_tiny(TextClassificationTask(encoder=lambda vocab: LSTMEncoder(vocab)), again, max_steps=-1, max_epochs=1)


PEAK_MEMORY = """
import json, resource, sys
from nlpkit.cli.main import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def peak_memory_mib(train: Path, streaming: bool, cwd: Path) -> float:
    command = [
        sys.executable, "-c", PEAK_MEMORY, "fit", "--model", "text-classification", "--model.encoder", "lstm",
        "--model.encoder.embedding_dim", "8", "--model.encoder.hidden_size", "8", "--data", "classification",
        "--data.train_path", str(train), "--data.streaming", str(streaming).lower(),
        "--data.tokenizer.vocab_size", "100", "--trainer.max_steps", "5", "--trainer.enable_progress_bar", "false",
        "--trainer.logger", "false", "--trainer.default_root_dir", str(cwd / train.stem),  # a run of its own
    ]  # fmt: skip
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 0, result.stderr[-2000:]
    return report["peak_kib"] / 1024


def test_streaming_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # both files hold more texts than the tokenizer samples (200,000), so only their size differs
    medium = write_corpus(tmp_path / "medium.csv", 25)  # 250,000 rows, about 9 MB
    large = write_corpus(tmp_path / "large.csv", 100)  # 1,000,000 rows, about 35 MB
    grown = peak_memory_mib(large, True, tmp_path) - peak_memory_mib(medium, True, tmp_path)
    assert grown < 20, f"streaming a 4x larger file took {grown:.0f} MiB more"
