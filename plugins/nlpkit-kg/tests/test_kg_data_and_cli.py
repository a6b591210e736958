"""Triples data, a trained model's metrics against a brute-force loop, checkpoints, and the ``nlpkit`` command."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from nlpkit_kg.data import TriplesData
from nlpkit_kg.graph import Vocabulary, iter_triples, read_entity_texts, read_triple_ids
from nlpkit_kg.sample import write_planted_graph
from nlpkit_kg.scorers import ComplEx, DistMult
from nlpkit_kg.task import LinkPredictionTask, bernoulli_head_probability

import nlpkit
from nlpkit import ConfigError, DataError, GRUEncoder, TokenizerOptions
from nlpkit.cli.main import main
from nlpkit.testing import fit_tiny

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kg.yaml"


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- reading ------------------------------------------------------------------------------------------------
def read_triples(path: str, queries: bool = False) -> list:
    return list(iter_triples(path, queries))


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.tsv:3: expected head<TAB>relation<TAB>tail, found 2"):
        read_triples(write(tmp_path / "train.tsv", "a\tr\tb\n\nc\tr\n"))
    with pytest.raises(DataError, match=r"train\.tsv:1: .*the tail is empty or \?"):
        read_triples(write(tmp_path / "train.tsv", "a\tr\t?\n"))
    with pytest.raises(DataError, match=r"queries\.tsv:2: .*mark exactly one of head and tail with \?"):
        read_triples(write(tmp_path / "queries.tsv", "a\tr\t?\na\tr\tb\n"), queries=True)
    with pytest.raises(DataError, match=r"texts\.tsv:2: entity 'a' already has a text \(line 1\)"):
        read_entity_texts(write(tmp_path / "texts.tsv", "a\tfirst\na\tsecond\n"))
    with pytest.raises(DataError, match=r"empty\.tsv: no triples found"):
        read_triples(write(tmp_path / "empty.tsv", "\n\n"))


def test_training_triples_grow_the_vocabularies_and_others_must_use_them(tmp_path: Path) -> None:
    entities, relations = Vocabulary("entity", []), Vocabulary("relation", [])
    train = read_triple_ids(write(tmp_path / "train.tsv", "a\tr\tb\nb\ts\tc\n"), entities, relations, grow=True)
    assert train.tolist() == [[0, 0, 1], [1, 1, 2]]
    assert entities.names == ["a", "b", "c"] and relations.names == ["r", "s"]
    queries = read_triple_ids(write(tmp_path / "q.tsv", "?\ts\tc\n"), entities, relations, queries=True)
    assert queries.tolist() == [[-1, 1, 2]]
    test = write(tmp_path / "test.tsv", "a\tr\tc\nb\tr\tzed\n")
    with pytest.raises(DataError, match=r"test\.tsv:2: unknown entity 'zed'.*never occurs in the training triples"):
        read_triple_ids(test, entities, relations)


PEAK_MEMORY = """
import resource, sys
from nlpkit_kg.graph import Vocabulary, read_triple_ids
ids = read_triple_ids(sys.argv[1], Vocabulary("entity", []), Vocabulary("relation", []), grow=True)
print(len(ids), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_a_triples_file_is_held_as_ids_not_names(tmp_path: Path) -> None:
    def peak_mib(triples: int) -> float:
        path = tmp_path / f"{triples}.tsv"
        with path.open("w", encoding="utf-8") as handle:
            for i in range(triples):
                handle.write(f"entity_{i % 50_000:06d}\trelation_{i % 97:03d}\tentity_{(i * 7919) % 50_000:06d}\n")
        run = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, str(path)], capture_output=True, text=True, timeout=300
        )
        count, peak_kib = map(int, run.stdout.split())
        assert count == triples, run.stderr[-2000:]
        return peak_kib / 1024

    # 600,000 more triples: 14 MiB of ids (twice that while the chunks are joined), 26 MiB of text; held as
    # tuples of strings they would take over 150 MiB
    grown = peak_mib(800_000) - peak_mib(200_000)
    assert grown < 60, f"600,000 more triples took {grown:.0f} MiB"


def test_bernoulli_odds_equal_a_counting_loop() -> None:
    rng = random.Random(0)
    triples = sorted({(rng.randrange(8), rng.randrange(3), rng.randrange(8)) for _ in range(60)})
    odds = bernoulli_head_probability(torch.tensor(triples), 3)
    for relation in range(3):
        rows = [(h, t) for h, r, t in triples if r == relation]
        tails_per_head = len(rows) / len({h for h, _ in rows})
        heads_per_tail = len(rows) / len({t for _, t in rows})
        assert odds[relation].item() == pytest.approx(tails_per_head / (tails_per_head + heads_per_tail), rel=1e-6)


def test_regularizers_equal_their_formulas() -> None:
    torch.manual_seed(0)
    vocabularies_ = {"entities": ["a", "b", "c"], "relations": ["r", "s"]}
    entities, relation_ids = torch.randn(4, 6), torch.tensor([0, 1, 3, 2])  # 3 and 2 ask for heads
    for kind in ("l2", "n3"):
        task = LinkPredictionTask(head=partial(ComplEx, dim=3), regularizer=kind, regularization_weight=0.5)
        task.bind(None, vocabularies_)
        relations = task.head.relation_embedding(relation_ids)  # inverse relations are relations 2 and 3
        if kind == "l2":
            expected = sum((x**2).sum(-1).mean() for x in (entities, relations))
        else:
            as_complex = [torch.complex(*x.chunk(2, dim=-1)) for x in (entities, relations)]
            expected = sum((z.abs() ** 3).sum(-1).mean() for z in as_complex)
        torch.testing.assert_close(task._regularization(relation_ids, entities), 0.5 * expected)


# -- evaluation of a trained model ------------------------------------------------------------------------------
def brute_force_metrics(entities: list[list[float]], relations: list[list[float]], train, test) -> dict[str, float]:
    """DistMult scores and realistic filtered ranks of every test query, by plain loops."""
    known = set(train) | set(test)

    def score(h: int, r: int, t: int) -> float:
        return sum(a * b * c for a, b, c in zip(entities[h], relations[r], entities[t], strict=True))

    ranks = []
    for h, r, t in test:
        for side in ("tail", "head"):
            target = score(h, r, t)
            higher = ties = 0
            for candidate in range(len(entities)):
                triple = (h, r, candidate) if side == "tail" else (candidate, r, t)
                if triple in known:
                    continue
                higher += score(*triple) > target
                ties += score(*triple) == target
            ranks.append(1 + higher + ties / 2)
    return {
        "test/mrr": sum(1 / rank for rank in ranks) / len(ranks),
        "test/mean-rank": sum(ranks) / len(ranks),
        **{f"test/hits@{k}": sum(rank <= k for rank in ranks) / len(ranks) for k in (1, 3, 10)},
    }


def test_filtered_metrics_equal_a_brute_force_loop_in_any_chunking(tmp_path: Path) -> None:
    rng = random.Random(1)
    names = [f"e{i}" for i in range(14)]
    ring = [(i, 0, (i + 1) % 14) for i in range(14)]  # every entity in training, in id order
    others = sorted({(rng.randrange(14), rng.randrange(2), rng.randrange(14)) for _ in range(40)} - set(ring))
    train, test = ring + others[:24], others[24:]
    for split, rows in (("train", train), ("test", test)):
        write(tmp_path / f"{split}.tsv", "".join(f"{names[h]}\tr{r}\t{names[t]}\n" for h, r, t in rows))
    data = TriplesData(train_path=str(tmp_path / "train.tsv"), test_path=str(tmp_path / "test.tsv"))
    task = LinkPredictionTask(head=partial(DistMult, dim=3), inverse_triples=False)
    trainer = fit_tiny(task, data, max_steps=1)
    # small integers: exact scores, and many ties between candidates
    entities = [[rng.randint(-1, 1) for _ in range(3)] for _ in names]
    relations = [[rng.randint(1, 2) for _ in range(3)] for _ in range(2)]
    assert task.entities.names == names and task.relations.names == ["r0", "r1"]
    with torch.no_grad():
        task.entity_embedding.weight.copy_(torch.tensor(entities, dtype=torch.float))
        task.head.relation_embedding.weight.copy_(torch.tensor(relations, dtype=torch.float))
    expected = brute_force_metrics(entities, relations, train, test)
    for chunk in (1, 5, 1000):
        task.hparams.eval_chunk_size = chunk
        result = trainer.test(task, datamodule=data, verbose=False)[0]
        for name, value in expected.items():
            assert result[name] == pytest.approx(value, abs=1e-6), (chunk, name)


# -- checkpoints and the command line -------------------------------------------------------------------------
def test_a_text_aware_model_predicts_the_same_after_loading_and_from_its_export(tmp_path: Path) -> None:
    graph = write_planted_graph(tmp_path / "data")
    pl.seed_everything(0, verbose=False)
    encoder = partial(GRUEncoder, embedding_dim=16, hidden_size=16)
    task = LinkPredictionTask(head=partial(DistMult, dim=16), encoder=encoder)
    data = TriplesData(train_path=str(graph["train"]), entity_texts=str(graph["entities"]),
                       tokenizer=TokenizerOptions(vocab_size=150))  # fmt: skip
    trainer = fit_tiny(task, data, max_steps=5)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    queries = [("nice", "located_in", None), (None, "married_to", "partner_01")]
    before = task.predict(queries, k=4)
    graph["entities"].unlink()  # the checkpoint carries the texts and the tokenizer
    loaded = nlpkit.load(tmp_path / "model.ckpt")
    after = loaded.predict(queries, k=4)
    assert [[c["entity"] for c in row] for row in after] == [[c["entity"] for c in row] for row in before]
    for old, new in zip(before, after, strict=True):
        assert [c["score"] for c in new] == pytest.approx([c["score"] for c in old], abs=1e-5)
        assert [c["score"] for c in new] == sorted((c["score"] for c in new), reverse=True)
    with pytest.raises(ConfigError, match="unknown relation 'locatd_in' \\(did you mean 'located_in'"):
        loaded.predict([("nice", "locatd_in", None)])
    with pytest.raises(ConfigError, match="exactly one of head and tail must be None"):
        loaded.predict([("nice", "located_in", "france")])
    assert main(["export", str(tmp_path / "model.ckpt"), "--out", str(tmp_path / "export")]) == 0
    exported = nlpkit.load(tmp_path / "export")  # the encoded entity texts are part of the graph
    assert type(exported.runtime).__name__ == "OnnxRuntime"
    for old, new in zip(before, exported.predict(queries, k=4), strict=True):
        assert [c["entity"] for c in new] == [c["entity"] for c in old]
        assert [c["score"] for c in new] == pytest.approx([c["score"] for c in old], abs=1e-4)


def nlpkit_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nlpkit", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=os.environ
    )


def test_the_example_config_fits_tests_and_predicts_from_the_command_line(tmp_path: Path) -> None:
    graph = write_planted_graph(tmp_path / "data")
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    fit = nlpkit_command(
        "fit", "--config", str(EXAMPLE), "--trainer.max_epochs", "3", "--data.train_path", str(graph["train"]),
        "--data.val_path", str(graph["valid"]), "--data.test_path", str(graph["test"]), *quiet, cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = tmp_path / "runs" / "kg" / "checkpoints" / "last.ckpt"
    test = nlpkit_command("test", "--ckpt_path", str(checkpoint), *quiet, cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/mrr/head" in test.stdout
    for split in ("train", "valid", "test"):  # predicting needs nothing but the checkpoint
        graph[split].unlink()
    predict = nlpkit_command(
        "predict", "--ckpt_path", str(checkpoint), "--data.predict_path", str(graph["queries"]),
        "--model.top_k", "2", *quiet, cwd=tmp_path,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr[-3000:]
    rows = [json.loads(line) for line in predict.stdout.splitlines() if line.startswith("{")]
    assert [row["index"] for row in rows] == [0, 1, 2]  # what each line answers: the query's place in the file
    assert all(len(row["prediction"]) == 2 and set(row["prediction"][0]) == {"entity", "score"} for row in rows)

    write(tmp_path / "bad.tsv", "a\tr\tb\nc\tr\n")
    bad = nlpkit_command("fit", "--config", str(EXAMPLE), "--data.train_path", "bad.tsv", *quiet, cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "nlpkit: error: bad.tsv:2: expected head<TAB>relation<TAB>tail, found 2 tab-separated columns"
    )
