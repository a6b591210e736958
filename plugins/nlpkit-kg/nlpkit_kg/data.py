"""The ``triples`` data module: TSV splits of a knowledge graph, optional entity texts, tensor batches."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from nlpkit import ConfigError, TextDataModule, Tokenizer, TokenizerOptions
from nlpkit_kg.graph import Vocabulary, read_entity_texts, read_triple_ids
from nlpkit_kg.task import LinkPredictionTask

LABELLED = ("train", "val", "test")


class Rows(Dataset):
    """Rows of a tensor, fetched a batch at a time (``__getitems__``) rather than one by one."""

    def __init__(self, rows: Tensor) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Tensor:
        return self.rows[index]

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        index = torch.tensor(indices, dtype=torch.long)
        return {"rows": self.rows[index], "index": index}


def _batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The batch ``Rows.__getitems__`` already made."""
    return batch


class TriplesData(TextDataModule):
    """A knowledge graph from ``head<TAB>relation<TAB>tail`` files (the layout of FB15k-237, WN18RR, Nations).

    Entities and relations are those of the training triples (plus the entities of ``entity_texts``); a validation
    or test triple naming anything else is an error with its file and line. Every labelled split's triples are known
    answers that filtered ranking leaves out. Prediction files hold queries with ``?`` for the entity to predict.

    :param train_path: training triples
    :param val_path: validation triples
    :param test_path: test triples
    :param predict_path: queries, e.g. ``paris<TAB>capital_of<TAB>?``
    :param entity_texts: ``entity<TAB>name or description`` lines, read by the model's encoder (when it has one);
        entities listed here but absent from the training triples can still be ranked from their text
    :param batch_size: training rows (queries or triples) per batch
    :param eval_batch_size: evaluation triples per batch
    :param num_workers: DataLoader worker processes
    :param seed: seed of the shuffling
    :param tokenizer: load or train (on the entity texts) the tokenizer of a text-reading model
    """

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        predict_path: str | None = None,
        entity_texts: str | None = None,
        batch_size: int = 256,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        seed: int = 0,
        tokenizer: TokenizerOptions | None = None,
    ) -> None:
        super().__init__(train_path, val_path, test_path, predict_path, None, batch_size, num_workers, seed, tokenizer)
        self.entity_texts_path = entity_texts
        self.eval_batch_size = eval_batch_size
        self.rows: dict[str, Tensor] = {}

    def _link_task(self) -> LinkPredictionTask:
        task = self._task()
        if not isinstance(task, LinkPredictionTask):
            raise ConfigError(f"data 'triples' feeds a link-prediction model, not {type(task).__name__}")
        return task

    def setup(self, stage: str) -> None:
        """Read the splits, bind the model to the graph's vocabularies (unless it has them), serve id rows."""
        task = self._link_task()
        # rankings are filtered by every labelled split; prediction with a trained model needs none of them
        labelled = [split for split in LABELLED if self.paths[split] and not (stage == "predict" and task.is_built)]
        ids = {}
        if not task.is_built:
            if not self.paths["train"]:
                raise ConfigError("no train data: set data.train_path (the vocabularies come from it)")
            entities, relations = Vocabulary("entity", []), Vocabulary("relation", [])
            ids["train"] = read_triple_ids(self.paths["train"], entities, relations, grow=True)
            texts = read_entity_texts(self.entity_texts_path) if self.entity_texts_path else {}
            for name in texts:  # entities known only from their texts come after the training graph's
                entities.add(name)
            task.entity_texts = [texts.get(name, name) for name in entities.names]
            task.bind(
                self._tokenizer(task, task.entity_texts), {"entities": entities.names, "relations": relations.names}
            )
        self.tokenizer, self.labels = task.tokenizer, task.labels
        for split in labelled:
            if split not in ids:
                ids[split] = read_triple_ids(self.paths[split], task.entities, task.relations)
        task.attach_graph(ids.get("train"), torch.cat([torch.empty(0, 3, dtype=torch.long), *ids.values()]))
        for split in self.stage_splits[stage]:
            if split == "predict":
                if not self.paths["predict"]:
                    raise ConfigError("no predict data: set data.predict_path")
                self.rows[split] = read_triple_ids(self.paths["predict"], task.entities, task.relations, queries=True)
            elif split in ids:
                self.rows[split] = task.training_rows(ids[split]) if split == "train" else ids[split]
            elif not (stage == "fit" and split == "val"):
                raise ConfigError(f"no {split} data: set data.{split}_path")

    def _tokenizer(self, task: LinkPredictionTask, texts: list[str]) -> Tokenizer | None:
        """The text-reading model's tokenizer: its own, the configured file, or one trained on the entity texts."""
        if task.encoder_factory is None:
            return None
        if task.tokenizer is not None:
            return self.task_tokenizer(task)
        return Tokenizer.from_options(self.tokenizer_options, texts)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        rows = self.rows[split]
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        return DataLoader(
            Rows(rows),
            batch_sampler=self.batch_sampler([1] * len(rows), batch_size, shuffle, shard=split != "predict"),
            collate_fn=_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        """Validation triples (none when fitting without ``val_path``)."""
        return self._loader("val", shuffle=False) if "val" in self.rows else []
