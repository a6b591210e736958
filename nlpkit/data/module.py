"""The base DataModule every dataset plugin extends: the same argument names for every task."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from nlpkit.data.batching import BucketBatchSampler
from nlpkit.data.readers import Format, Record, iter_records, read_records
from nlpkit.data.streaming import StreamedExamples
from nlpkit.models.tokenizers import Tokenizer, TokenizerOptions
from nlpkit.plugin.configurable import class_path
from nlpkit.plugin.errors import ConfigError

if TYPE_CHECKING:
    from nlpkit.training.task import Task


def _language(fields: dict[str, Any]) -> dict[str, Any]:
    return {"language": fields["language"]} if "language" in fields else {}


def collate_with_language(collate: Any, examples: list[dict[str, Any]]) -> dict[str, Any]:
    """The task's batch plus each example's language code (for per-language metrics)."""
    return {**collate(examples), "language": [example["language"] for example in examples]}


#: texts a tokenizer is trained on when the training file is streamed (the first ones)
TOKENIZER_SAMPLE = 200_000


class TextDataModule(pl.LightningDataModule):
    """Reads local files, gets the tokenizer and label set, and serves length-bucketed batches.

    The task turns each record's fields into tensors (``Task.encode`` and ``Task.collate``), so the same
    code serves files here and lists of texts in ``Task.predict``. Subclasses adapt a file layout by
    overriding :meth:`fields` (and :meth:`texts`/:meth:`label_values` for non-text fields).

    :param train_path: training file; the tokenizer and the labels are learned from it
    :param val_path: validation file
    :param test_path: test file
    :param predict_path: file of inputs to predict
    :param format: txt, jsonl, csv, tsv or conll; by default taken from each file's extension
    :param batch_size: examples per batch
    :param num_workers: DataLoader worker processes
    :param seed: seed of the bucketed shuffling
    :param tokenizer: load a SentencePiece model or train one on the training split
    :param streaming: read the training file as it is consumed, in shards across processes and workers, for
        corpora larger than memory (see :mod:`nlpkit.data.streaming`): one endless epoch, so set
        ``trainer.max_steps`` (and ``trainer.val_check_interval`` in steps); the tokenizer is trained on the
        first ``TOKENIZER_SAMPLE`` texts
    """

    #: the registry its subclasses are registered in (checked by the plugin loader)
    registry_kind: ClassVar[str] = "datasets"
    #: the splits each Lightning stage reads
    stage_splits: ClassVar[dict[str, tuple[str, ...]]] = {
        "fit": ("train", "val"),
        "validate": ("val",),
        "test": ("test",),
        "predict": ("predict",),
    }

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        predict_path: str | None = None,
        format: Format | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        tokenizer: TokenizerOptions | None = None,
        streaming: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # checkpoints keep plain data only (they load with weights_only=True), and name the class to rebuild
        self.hparams["tokenizer"] = asdict(tokenizer) if isinstance(tokenizer, TokenizerOptions) else tokenizer
        self.hparams.setdefault("_class_path", class_path(type(self)))
        self.paths = {"train": train_path, "val": val_path, "test": test_path, "predict": predict_path}
        self.format = format
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.tokenizer_options = tokenizer or TokenizerOptions()
        self.tokenizer: Tokenizer | None = None
        self.labels: list[str] | None = None
        self.streaming = streaming
        self.examples: dict[str, list[dict[str, Any]]] = {}
        #: the predict split as read (each record's line, and the fields the task read), by example index: what
        #: ``nlpkit predict`` prints beside each prediction; empty where examples are not one per record
        self.predict_inputs: list[tuple[Record, dict[str, Any]]] = []
        self.stream: StreamedExamples | None = None

    # -- what subclasses adapt -------------------------------------------------------------------------
    def reader_options(self) -> dict[str, Any]:
        """Extra keyword arguments for :func:`nlpkit.data.readers.read_records`."""
        return {}

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """The task's fields of one record (default: the record's fields as read)."""
        return dict(record.fields)

    def texts(self, fields: dict[str, Any]) -> Iterator[str]:
        """The text the tokenizer is trained on."""
        text = fields.get("text")
        if isinstance(text, str):
            yield text
        yield from fields.get("tokens", ())

    def label_values(self, fields: dict[str, Any]) -> list[str]:
        """The label strings of one example (none for unlabelled tasks)."""
        return []

    def task_tokenizer(self, task: Task) -> Tokenizer:
        """The tokenizer the task already has; a ``tokenizer.path`` that is not the one its pretrained weights
        (``init_from``, a pretrained encoder) came with is refused."""
        source = getattr(task, "tokenizer_source", None)
        path = self.tokenizer_options.path
        if source and path and Tokenizer.load(path) != task.tokenizer:
            raise ConfigError(
                f"data.tokenizer.path {path} is not the tokenizer of {source}: the pretrained weights only "
                "mean something with their own tokenizer (drop data.tokenizer.path)"
            )
        return task.tokenizer

    def tokenizer_texts(self, train: Iterable[tuple[Record, dict[str, Any]]]) -> Iterator[str]:
        """The text a new tokenizer is trained on (default: every training text)."""
        return (text for _, fields in train for text in self.texts(fields))

    def sample_weights(self, examples: list[dict[str, Any]]) -> list[float] | None:
        """Per-example sampling weights for training epochs (default: none, every example once an epoch)."""
        return None

    def arrange(self, examples: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
        """The examples a split serves, from the encoded records (default: one each; language models pack)."""
        return examples

    # -- the shared machinery --------------------------------------------------------------------------
    def _task(self) -> Task | None:
        trainer = self.trainer
        return trainer.lightning_module if trainer is not None else None  # type: ignore[return-value]

    def read(self, split: str, labeled: bool = True) -> list[tuple[Record, dict[str, Any]]]:
        """Records of ``split`` with their task fields; a missing path is a one-line error."""
        path = self.paths[split]
        if not path:
            raise ConfigError(f"no {split} data: set data.{split}_path")
        return [
            (record, self.fields(record, labeled))
            for record in read_records(path, self.format, **self.reader_options())
        ]

    def setup(self, stage: str) -> None:
        """Read the stage's files, get the tokenizer and labels (from the task if it has them), encode."""
        task = self._task()
        splits = [
            split
            for split in self.stage_splits[stage]
            if not (stage == "fit" and split == "val" and not self.paths["val"])
        ]
        streamed = self.streaming and "train" in splits
        if streamed and type(self).read is not TextDataModule.read:
            raise ConfigError(f"data.streaming: {type(self).__name__} reads its files its own way and cannot stream")
        read = {  # fit may skip validation; a streamed training file is never read whole
            split: self.read(split, labeled=split != "predict")
            for split in splits
            if not (streamed and split == "train")
        }
        needs_training_split = (task is None or task.tokenizer is None) and not self.tokenizer_options.path
        train = read.get("train")
        if train is None and needs_training_split and not self.streaming:
            train = self.read("train")

        def training_records() -> Iterable[tuple[Record, dict[str, Any]]] | None:
            """The training split as read, or (streaming) a fresh lazy pass over its file."""
            return self.stream_records("train", 0, 1) if train is None and streamed else train

        if task is not None and task.tokenizer is not None:
            self.tokenizer = self.task_tokenizer(task)
        else:
            texts = self.tokenizer_texts(training_records() or [])
            sample = islice(texts, TOKENIZER_SAMPLE) if streamed else texts
            self.tokenizer = Tokenizer.from_options(self.tokenizer_options, sample)
        self.labels = self._labels(task, training_records(), read)
        if task is None:
            return
        task.bind(self.tokenizer, self.labels)
        if streamed:
            self.stream = self._streamed_examples(task)
        for split, rows in read.items():
            encoded = [
                {**task.encode(fields, labeled=split != "predict", record=record), **_language(fields)}
                for record, fields in rows
            ]
            self.examples[split] = [{**example, "index": i} for i, example in enumerate(self.arrange(encoded, split))]
        if "predict" in read and len(read["predict"]) == len(self.examples["predict"]):
            self.predict_inputs = read["predict"]

    def stream_records(self, split: str, shard: int, shards: int) -> Iterator[tuple[Record, dict[str, Any]]]:
        """Every ``shards``-th record of ``split`` from ``shard`` on, with its task fields, read lazily."""
        path = self.paths[split]
        if not path:
            raise ConfigError(f"no {split} data: set data.{split}_path")
        records = iter_records(path, self.format, **self.reader_options())
        for record in islice(records, shard, None, shards):
            yield record, self.fields(record, labeled=True)

    def _streamed_examples(self, task: Task) -> StreamedExamples:
        def examples(shard: int, shards: int) -> Iterator[dict[str, Any]]:
            for record, fields in self.stream_records("train", shard, shards):
                yield {**task.encode(fields, labeled=True, record=record), **_language(fields)}

        def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
            return collate_with_language(task.collate, batch) if "language" in batch[0] else task.collate(batch)

        trainer = self.trainer
        return StreamedExamples(
            examples,
            collate,
            partial(self.arrange, split="train"),
            self.sample_weights,
            self.batch_size,
            seed=self.seed,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )

    def _labels(
        self,
        task: Task | None,
        train: Iterable[tuple[Record, dict[str, Any]]] | None,
        read: dict[str, list[tuple[Record, dict[str, Any]]]],
    ) -> list[str] | None:
        if task is not None and task.labels is not None:
            labels = task.labels
        elif train is not None:
            values = sorted({value for _, fields in train for value in self.label_values(fields)})
            labels = values or None
        else:
            labels = None
        if labels is not None:
            known = set(labels)
            for split, rows in read.items():
                for record, fields in rows:
                    unknown = [value for value in self.label_values(fields) if value not in known]
                    if unknown:
                        raise record.error(
                            f"label '{unknown[0]}' in the {split} data never occurs in the training data "
                            f"(known: {', '.join(labels)})"
                        )
        return labels

    def batch_sampler(
        self,
        lengths: list[int],
        batch_size: int,
        shuffle: bool,
        weights: list[float] | None = None,
        shard: bool = True,
    ) -> BucketBatchSampler:
        """Length-bucketed batches for this process: its shard under data parallelism (unless ``shard`` is
        False: predictions are made whole by every process and written once), and, when training resumes from a
        checkpoint saved mid-epoch, only the batches of that epoch not yet trained on."""
        trainer = self.trainer
        replicas = {"num_replicas": trainer.world_size, "rank": trainer.global_rank} if trainer and shard else {}
        sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=self.seed, weights=weights, **replicas)
        if shuffle and trainer is not None and trainer.fit_loop.restarting:
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed  # saved before "completed" counts it
            if 0 < done < len(sampler):
                sampler.skip_next(done)
        return sampler

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        task = self._task()
        if task is None:
            raise ConfigError("the data module needs a task: use it through a Lightning Trainer")
        examples = self.examples[split]
        lengths = [example["length"] for example in examples]
        weights = self.sample_weights(examples) if split == "train" else None
        sampler = self.batch_sampler(lengths, self.batch_size, shuffle, weights, shard=split != "predict")
        languages = examples and "language" in examples[0]
        return DataLoader(
            examples,  # type: ignore[arg-type]
            batch_sampler=sampler,
            collate_fn=partial(collate_with_language, task.collate) if languages else task.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, length-bucketed training batches (streamed from the file with ``streaming``)."""
        if self.stream is not None:
            return DataLoader(
                self.stream, batch_size=None, num_workers=self.num_workers, persistent_workers=self.num_workers > 0
            )
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        """Validation batches in length order (none when fitting without ``val_path``)."""
        return self._loader("val", shuffle=False) if "val" in self.examples else []

    def test_dataloader(self) -> DataLoader:
        """Test batches in length order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Prediction batches in length order; predictions carry each input's index."""
        return self._loader("predict", shuffle=False)
