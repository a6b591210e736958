"""Readers (every format, bad input with file:line) and length-bucketed batching."""

from __future__ import annotations

import pytest
import torch

from nlpkit import pad, read_records
from nlpkit.data.batching import BucketBatchSampler
from nlpkit.plugin.errors import ConfigError, DataError


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_txt_skips_blank_lines_and_keeps_line_numbers(tmp_path) -> None:
    records = read_records(write(tmp_path, "a.txt", "\ufefffirst\r\n\r\nthird\n"))
    assert [(r.fields["text"], r.line) for r in records] == [("first", 1), ("third", 3)]


def test_jsonl_and_its_errors(tmp_path) -> None:
    path = write(tmp_path, "a.jsonl", '{"text": "x", "label": "pos"}\n\n{"text": "y"\n')
    with pytest.raises(DataError, match=r"a.jsonl:3: expected a JSON object"):
        read_records(path)
    with pytest.raises(DataError, match=r"a.jsonl:1: expected a JSON object, found list"):
        read_records(write(tmp_path, "a.jsonl", "[1, 2]\n"))
    assert read_records(write(tmp_path, "b.jsonl", '{"text": "x"}\n'))[0].fields == {"text": "x"}


def test_csv_and_tsv_with_quoting_and_column_errors(tmp_path) -> None:
    records = read_records(write(tmp_path, "a.csv", 'text,label\n"hello, world",pos\n'))
    assert records[0].fields == {"text": "hello, world", "label": "pos"}
    assert read_records(write(tmp_path, "a.tsv", "text\tlabel\na b\tneg\n"))[0].fields["label"] == "neg"
    with pytest.raises(DataError, match=r"b.csv:3: expected 2 columns \(text, label\), found 3"):
        read_records(write(tmp_path, "b.csv", "text,label\nok,pos\nbad,pos,extra\n"))


def test_conll_sentences_docstart_comments_and_columns(tmp_path) -> None:
    content = "-DOCSTART- -X- O O\n\n# sent 1\nAngela\tB-PER\nMerkel\tI-PER\n\nParis NNP B-LOC\r\n"
    records = read_records(write(tmp_path, "a.conll", content))
    assert [r.fields for r in records] == [
        {"tokens": ["Angela", "Merkel"], "tags": ["B-PER", "I-PER"]},
        {"tokens": ["Paris"], "tags": ["B-LOC"]},
    ]
    assert [r.line for r in records] == [4, 7]
    with pytest.raises(DataError, match=r"b.conll:2: expected at least 2 columns"):
        read_records(write(tmp_path, "b.conll", "Angela B-PER\nMerkel\n"))


def test_encoding_empty_missing_and_unknown_format(tmp_path) -> None:
    with pytest.raises(DataError, match=r"a.txt:2: invalid UTF-8 at byte 3"):
        read_records(write(tmp_path, "a.txt", b"fine\nbad\xff\xfe\n"))
    with pytest.raises(DataError, match=r"empty.csv: no records found \(expected csv data\)"):
        read_records(write(tmp_path, "empty.csv", "text,label\n"))
    with pytest.raises(DataError, match=r"nowhere.txt: file not found"):
        read_records(tmp_path / "nowhere.txt")
    with pytest.raises(ConfigError, match=r"cannot tell the format from extension '.xyz'"):
        read_records(write(tmp_path, "a.xyz", "x"))
    assert read_records(write(tmp_path, "a.xyz", "x\n"), format="txt")[0].fields == {"text": "x"}


def test_pad_builds_ids_and_mask() -> None:
    ids, mask = pad([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]


@pytest.mark.parametrize("shuffle", [True, False])
def test_buckets_cover_every_index_once_with_similar_lengths(shuffle: bool) -> None:
    lengths = torch.randint(1, 200, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = BucketBatchSampler(lengths, batch_size=16, shuffle=shuffle, seed=3, pool_factor=10)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 30  # random batches of 16 would spread over ~175


def test_bucket_order_depends_on_seed_and_epoch_only() -> None:
    lengths = list(range(100))
    first, again = BucketBatchSampler(lengths, 8, seed=1), BucketBatchSampler(lengths, 8, seed=1)
    assert list(first) == list(again)
    again.set_epoch(1)
    assert list(first) != list(again)
    assert list(BucketBatchSampler(lengths, 8, drop_last=True))[-1].__len__() == 8


def test_documents_are_whole_files_or_every_txt_in_a_folder(tmp_path) -> None:
    (tmp_path / "corpus" / "b").mkdir(parents=True)
    write(tmp_path / "corpus", "a.txt", "first line\nsecond line\n")
    write(tmp_path / "corpus" / "b", "c.txt", "\ufeffanother\r\ndocument\r\n")
    write(tmp_path / "corpus", "notes.md", "ignored")
    records = read_records(tmp_path / "corpus")
    assert [r.fields for r in records] == [
        {"text": "first line\nsecond line", "file": "a.txt"},
        {"text": "another\ndocument", "file": "b/c.txt"},
    ]
    one = read_records(tmp_path / "corpus" / "a.txt", format="documents")
    assert [r.fields["text"] for r in one] == ["first line\nsecond line"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no records found \(expected documents data\)"):
        read_records(tmp_path / "empty")


def test_csv_quoted_fields_may_span_lines_and_errors_name_the_row_start(tmp_path) -> None:
    path = write(tmp_path, "multi.csv", 'text,label\n"first line\nsecond line",pos\nplain,neg\n"a","b","c"\n')
    with pytest.raises(DataError, match=r"multi.csv:5: expected 2 columns"):
        read_records(path)
    path = write(tmp_path, "ok.csv", 'text,label\n"first line\nsecond line",pos\nplain,neg\n')
    assert [(r.fields["text"], r.line) for r in read_records(path)] == [("first line\nsecond line", 2), ("plain", 4)]


def test_token_budget_batches_keep_length_order_and_both_limits() -> None:
    from nlpkit.data.batching import token_budget_batches

    lengths = [5, 1, 9, 3, 3, 40, 2, 7, 0]
    batches = token_budget_batches(lengths, batch_size=3, max_tokens=12)
    order = [index for batch in batches for index in batch]
    assert sorted(order) == list(range(len(lengths)))
    assert [lengths[i] for i in order] == sorted(lengths)
    assert [5] in batches  # longer than the budget: alone
    for batch in batches:
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 12)
    assert token_budget_batches(lengths, batch_size=4) == [order[:4], order[4:8], order[8:]]
