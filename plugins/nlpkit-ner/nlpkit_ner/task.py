"""Token classification (NER): subword-aligned word tags, a softmax or CRF head, entities with character offsets."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from nlpkit.data import Record, pad
from nlpkit.encoders import EncoderFactory
from nlpkit.errors import ConfigError
from nlpkit.heads import HeadFactory, LinearHead
from nlpkit.task import StepOutput, Task
from nlpkit_ner.chars import CharEncoder, CharFeatures, char_ids
from nlpkit_ner.crf import CRF
from nlpkit_ner.tags import Scheme, allowed_transitions, check_tags, spans
from nlpkit_ner.words import join_words, split_words


class TokenClassificationTask(Task):
    """Tags every word: the word's label is learned and read at its first SentencePiece piece.

    Words are encoded piece by piece; the other pieces of a word are not tagged, so subword splits never
    shift a label. Predictions are entities ``{text, label, start, end, score}`` with character offsets in the
    input; raw text is split into words by :data:`nlpkit_ner.words.WORD` (runs of letters and digits, and
    single punctuation marks), and pre-tokenised input (``{"tokens": [...]}``) is taken as it is.

    :param head: maps each word's first-piece state to tag scores (``linear``, ``mlp`` or a plugin's)
    :param crf: decode with a linear-chain CRF whose transitions forbid invalid moves (else a softmax per word)
    :param char_features: add a character CNN or BiLSTM feature to every word (helps models trained from scratch)

    The tag scheme (IOB2 or BIOES) is the one of the labels, which the data module converts the files into.
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        head: HeadFactory = LinearHead,
        crf: bool = True,
        char_features: CharFeatures = "none",
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        default_metrics = ["entity-f1", "entity-precision", "entity-recall", "token-accuracy"]
        super().__init__(encoder, metrics=default_metrics if metrics is None else metrics, **kwargs)
        self.head_factory = head
        self.use_crf = crf
        self.char_features = char_features

    def build(self) -> None:
        """The head, the CRF with the scheme's allowed transitions, and the entity metrics."""
        if not self.labels:
            raise ConfigError("token classification needs tagged training data")
        self.label_ids = {label: index for index, label in enumerate(self.labels)}
        problem = check_tags(self.labels)
        if problem:
            raise ConfigError(f"labels: {problem}")
        self.scheme: Scheme = "bioes" if any(label[:2] in ("E-", "S-") for label in self.labels) else "iob2"
        self.chars = CharEncoder(self.char_features) if self.char_features != "none" else None
        feature_dim = self.encoder.output_dim + (self.chars.output_dim if self.chars is not None else 0)
        self.head = self.head_factory(feature_dim, len(self.labels))
        self.crf = CRF(len(self.labels), *allowed_transitions(self.labels, self.scheme)) if self.use_crf else None
        types = sorted({label[2:] for label in self.labels if label != "O"})
        self.build_metrics(types=types, scheme=self.scheme)

    def input_fields(self, item: Any) -> dict[str, Any]:
        """A text is split into words (with offsets); a list of words or ``{"tokens": [...]}`` is taken as is."""
        if isinstance(item, str):
            words = split_words(item)
            return {"tokens": [w for w, _, _ in words], "text": item, "offsets": [(s, e) for _, s, e in words]}
        tokens = item if isinstance(item, list) else item.get("tokens") if isinstance(item, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise ConfigError("predict takes texts, lists of words, or dicts with 'tokens'")
        text, offsets = join_words(tokens)
        return {"tokens": tokens, "text": text, "offsets": offsets}

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """``<s>`` then each word's pieces; the index of every word's first piece; tag ids when labelled.

        Words beyond the tokenizer's ``max_length`` are cut off (they are predicted as outside any entity).
        """
        if not labeled and "offsets" not in fields:  # a raw text or words from a file: find the words' offsets
            fields = self.input_fields(fields.get("text", fields))
        tokens = fields["tokens"]
        ids, firsts = [self.tokenizer.bos_id], []  # type: ignore[union-attr]
        for pieces in self.tokenizer.encode(tokens, max_length=10**9):  # type: ignore[union-attr]
            pieces = pieces or [self.tokenizer.unk_id]  # type: ignore[union-attr]
            if len(ids) + len(pieces) > self.tokenizer.max_length:  # type: ignore[union-attr]
                break
            firsts.append(len(ids))
            ids.extend(pieces)
        example: dict[str, Any] = {"tokens": ids, "firsts": firsts, "length": len(ids), "words": len(tokens)}
        if self.char_features != "none":
            example["chars"] = [char_ids(word) for word in tokens[: len(firsts)]]
        if labeled:
            example["tags"] = [self.label_ids[tag] for tag in fields["tags"][: len(firsts)]]
            example["gold"] = fields["tags"]
        if "offsets" in fields:
            example.update(text=fields["text"], offsets=fields["offsets"])
        return example

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded piece ids and mask, first-piece positions and word mask, tag ids; raw fields as lists."""
        tokens, mask = pad([example["tokens"] for example in examples])
        firsts, word_mask = pad([example["firsts"] for example in examples])
        batch: dict[str, Any] = {
            "tokens": tokens, "mask": mask, "firsts": firsts, "word_mask": word_mask,
            "index": torch.tensor([example["index"] for example in examples]),
            "words": [example["words"] for example in examples],
        }  # fmt: skip
        if "chars" in examples[0]:
            longest = max((len(chars) for example in examples for chars in example["chars"]), default=1)
            batch["chars"] = torch.zeros(len(examples), firsts.size(1), max(longest, 1), dtype=torch.long)
            for row, example in enumerate(examples):
                for column, chars in enumerate(example["chars"]):
                    batch["chars"][row, column, : len(chars)] = torch.tensor(chars)
        if "tags" in examples[0]:
            batch["tags"], _ = pad([example["tags"] for example in examples])
            batch["gold"] = [example["gold"] for example in examples]
        if "offsets" in examples[0]:
            batch["text"] = [example["text"] for example in examples]
            batch["offsets"] = [example["offsets"] for example in examples]
        return batch

    def forward(self, tokens: Tensor, mask: Tensor, firsts: Tensor, chars: Tensor | None = None) -> Tensor:
        """Tag scores of every word ``(B, W, num_labels)``, read at the word's first piece (plus its characters)."""
        hidden = self.encoder(tokens, mask)  # (B, P, H)
        words = hidden.gather(1, firsts[..., None].expand(-1, -1, hidden.size(-1)))  # (B, W, H)
        if self.chars is not None:
            words = torch.cat([words, self.chars(chars).to(words.dtype)], dim=-1)  # (B, W, H + F)
        return self.head(words).float()

    def _emissions(self, batch: dict[str, Any]) -> Tensor:
        return self(batch["tokens"], batch["mask"], batch["firsts"], batch.get("chars"))

    def _decode(self, emissions: Tensor, word_mask: Tensor) -> list[list[int]]:
        if self.crf is not None:
            return self.crf.decode(emissions, word_mask)
        return [row[: int(n)].tolist() for row, n in zip(emissions.argmax(-1), word_mask.sum(1), strict=True)]

    def _tag_strings(self, paths: list[list[int]], words: list[int]) -> list[list[str]]:
        """Tag names per sentence, with "O" for words cut off by the length limit."""
        return [[self.labels[i] for i in path] + ["O"] * (n - len(path)) for path, n in zip(paths, words, strict=True)]  # type: ignore[index]

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """CRF negative log-likelihood (or cross-entropy per word); decoded tags for the entity metrics."""
        emissions = self._emissions(batch)
        word_mask, tags = batch["word_mask"], batch["tags"]
        if self.crf is not None:
            loss = self.crf(emissions, tags, word_mask)
        else:
            loss = F.cross_entropy(emissions[word_mask], tags[word_mask])
        predictions = [] if self.training else self._tag_strings(self._decode(emissions, word_mask), batch["words"])
        return StepOutput(loss, predictions, [] if self.training else batch["gold"], len(emissions))

    def predict_batch(self, batch: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Entities per input: ``{text, label, start, end, score}`` (score: mean tag probability of its words)."""
        emissions = self._emissions(batch)
        probabilities = emissions.softmax(-1)
        paths = self._decode(emissions, batch["word_mask"])
        results = []
        for row, (path, tags) in enumerate(zip(paths, self._tag_strings(paths, batch["words"]), strict=True)):
            text, offsets = batch["text"][row], batch["offsets"][row]
            entities = []
            for label, start, end in spans(tags, self.scheme):
                first, last = offsets[start][0], offsets[end - 1][1]
                word_scores = [float(probabilities[row, i, path[i]]) for i in range(start, min(end, len(path)))]
                score = sum(word_scores) / len(word_scores) if word_scores else 0.0
                entities.append({"text": text[first:last], "label": label, "start": first, "end": last, "score": score})
            results.append(entities)
        return results
