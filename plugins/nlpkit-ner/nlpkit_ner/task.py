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
from nlpkit.tokenization import Tokenizer
from nlpkit_ner.chars import CharEncoder, CharFeatures, char_ids
from nlpkit_ner.crf import CRF
from nlpkit_ner.tags import Scheme, Span, allowed_transitions, check_tags, spans, tags_of
from nlpkit_ner.words import join_words, split_words, stitch, windows


def _rows(examples: list[dict[str, Any]], key: str) -> list[Any]:
    """Every window's entry under ``key``, example after example: the rows of a batch."""
    return [row for example in examples for row in example[key]]


def _per_example(per_row: list[list[Any]], batch: dict[str, Any]) -> list[list[Any]]:
    """Per-word values of a batch's rows (windows) as one value per word of each example (see :func:`stitch`)."""
    results, row = [], 0
    for ranges in batch["windows"]:
        results.append(stitch(per_row[row : row + len(ranges)], ranges))
        row += len(ranges)
    return results


class TokenClassificationTask(Task):
    """Tags every word: the word's label is learned and read at its first SentencePiece piece.

    Words are encoded piece by piece; the other pieces of a word are not tagged, so subword splits never
    shift a label. Predictions are entities ``{text, label, start, end, score}`` with character offsets in the
    input; raw text is split into words by :data:`nlpkit_ner.words.WORD` (runs of letters and digits, and
    single punctuation marks), and pre-tokenised input (``{"tokens": [...]}``) is taken as it is.

    A sentence longer than the tokenizer's ``max_length`` (``<s>`` and the pieces) is read, in training and in
    prediction, in windows of whole words that overlap by ``stride`` words (see :func:`nlpkit_ner.words.windows`),
    so an entity far into a long text is found like one at its start. Each window is tagged on its own; a word in
    two windows keeps the tag of the one where it sits further from the edge (the overlap is split at its
    middle), so a word at a window's edge is tagged with the context the other window gives it.

    :param head: maps each word's first-piece state to tag scores (``linear``, ``mlp`` or a plugin's)
    :param crf: decode with a linear-chain CRF whose transitions forbid invalid moves (else a softmax per word)
    :param char_features: add a character CNN or BiLSTM feature to every word (helps models trained from scratch)
    :param stride: words shared by consecutive windows of a long sentence (at most half a window)

    The tag scheme (IOB2 or BIOES) is the one of the labels, which the data module converts the files into.
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        head: HeadFactory = LinearHead,
        crf: bool = True,
        char_features: CharFeatures = "none",
        stride: int = 32,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if stride < 0:
            raise ConfigError(f"stride must be a number of words >= 0, got {stride}")
        default_metrics = ["entity-f1", "entity-precision", "entity-recall", "token-accuracy"]
        super().__init__(encoder, metrics=default_metrics if metrics is None else metrics, **kwargs)
        self.head_factory = head
        self.use_crf = crf
        self.char_features = char_features
        self.stride = stride

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
        """Per window of the sentence: ``<s>`` and its words' pieces, each word's first-piece position, tag ids.

        ``windows`` holds the windows' word ranges; a word with more pieces than a window holds is cut to fit.
        """
        if not labeled and "offsets" not in fields:  # a raw text or words from a file: find the words' offsets
            fields = self.input_fields(fields.get("text", fields))
        tokens = fields["tokens"]
        tokenizer: Tokenizer = self.tokenizer  # type: ignore[assignment]
        budget = max(tokenizer.max_length - 1, 1)  # pieces per window after <s>
        pieces = [(word or [tokenizer.unk_id])[:budget] for word in tokenizer.encode(tokens, max_length=10**9)]
        ranges = windows([len(word) for word in pieces], budget, self.stride)
        example: dict[str, Any] = {"windows": ranges, "tokens": [], "firsts": []}
        for start, end in ranges:
            window, firsts = [tokenizer.bos_id], []
            for word in pieces[start:end]:
                firsts.append(len(window))
                window.extend(word)
            example["tokens"].append(window)
            example["firsts"].append(firsts)
        example["length"] = max(len(window) for window in example["tokens"])
        if self.char_features != "none":
            example["chars"] = [[char_ids(word) for word in tokens[start:end]] for start, end in ranges]
        if labeled:
            entities = spans(fields["tags"], self.scheme)
            example["tags"] = [self._window_tags(entities, start, end) for start, end in ranges]
            example["gold"] = fields["tags"]
        if "offsets" in fields:
            example.update(text=fields["text"], offsets=fields["offsets"])
        return example

    def _window_tags(self, entities: list[Span], start: int, end: int) -> list[int]:
        """Tag ids of the words ``start:end``; the part of an entity cut by the window's edge is tagged as an entity
        of its own, so that every window's tags are a valid path for the CRF."""
        visible = [
            (label, max(first, start) - start, min(last, end) - start)
            for label, first, last in entities
            if first < end and last > start
        ]
        return [self.label_ids[tag] for tag in tags_of(visible, end - start, self.scheme)]

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """One row per window: padded piece ids and mask, first-piece positions and word mask, tag ids.

        ``windows`` keeps each example's word ranges (its rows follow one another); raw fields are lists.
        """
        tokens, mask = pad(_rows(examples, "tokens"))
        firsts, word_mask = pad(_rows(examples, "firsts"))
        batch: dict[str, Any] = {
            "tokens": tokens, "mask": mask, "firsts": firsts, "word_mask": word_mask,
            "windows": [example["windows"] for example in examples],
            "index": torch.tensor([example["index"] for example in examples]),
        }  # fmt: skip
        if "chars" in examples[0]:
            words = _rows(examples, "chars")
            longest = max((len(chars) for row in words for chars in row), default=1)
            batch["chars"] = torch.zeros(len(words), firsts.size(1), max(longest, 1), dtype=torch.long)
            for row, row_words in enumerate(words):
                for column, chars in enumerate(row_words):
                    batch["chars"][row, column, : len(chars)] = torch.tensor(chars)
        if "tags" in examples[0]:
            batch["tags"], _ = pad(_rows(examples, "tags"))
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

    def inference_inputs(self) -> tuple[str, ...]:
        """Exported forward: pieces, their mask, each word's first piece, the word mask (and characters)."""
        return ("tokens", "mask", "firsts", "word_mask", *(("chars",) if self.chars is not None else ()))

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each word's best ``tags`` ``(B, W)`` (CRF Viterbi, in the exported graph too) and their ``scores``, the
        tag's probability under a softmax of the word's emissions."""
        emissions = self(inputs["tokens"], inputs["mask"], inputs["firsts"], inputs.get("chars"))
        tags = self._best_tags(emissions, inputs["word_mask"])
        return {"tags": tags, "scores": emissions.softmax(-1).gather(2, tags.unsqueeze(2)).squeeze(2)}

    def _best_tags(self, emissions: Tensor, word_mask: Tensor) -> Tensor:
        """Each window's best tag ids ``(B, W)``; a window without words (an empty input) decodes one position."""
        if self.crf is None:
            return emissions.argmax(-1)
        first = torch.arange(word_mask.size(1), device=word_mask.device) == 0
        return self.crf.best_paths(emissions, word_mask | first)

    def _decode(self, emissions: Tensor, word_mask: Tensor) -> list[list[int]]:
        """Each window's best tag ids, one per word."""
        paths = self._best_tags(emissions, word_mask).tolist()
        return [path[:count] for path, count in zip(paths, word_mask.sum(1).tolist(), strict=True)]

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """CRF negative log-likelihood (or cross-entropy per word) over windows; decoded tags for the entity metrics."""
        emissions = self._emissions(batch)
        word_mask, tags = batch["word_mask"], batch["tags"]
        if self.crf is not None:
            loss = self.crf(emissions, tags, word_mask)
        else:
            loss = F.cross_entropy(emissions[word_mask], tags[word_mask])
        examples = len(batch["windows"])
        if self.training:
            return StepOutput(loss, [], [], examples)
        paths = _per_example(self._decode(emissions, word_mask), batch)
        predictions = [[self.labels[i] for i in path] for path in paths]  # type: ignore[index]
        return StepOutput(loss, predictions, batch["gold"], examples)

    def predict_batch(self, batch: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Entities per input: ``{text, label, start, end, score}`` (score: mean tag probability of its words)."""
        outputs = self.outputs_of(batch)
        counts = batch["word_mask"].sum(1).tolist()
        rows = zip(outputs["tags"].tolist(), outputs["scores"].tolist(), counts, strict=True)
        scored = [list(zip(tags[:count], scores[:count], strict=True)) for tags, scores, count in rows]
        results = []
        for words, text, offsets in zip(_per_example(scored, batch), batch["text"], batch["offsets"], strict=True):
            tags = [self.labels[tag] for tag, _ in words]  # type: ignore[index]
            entities = []
            for label, start, end in spans(tags, self.scheme):
                first, last = offsets[start][0], offsets[end - 1][1]
                score = sum(probability for _, probability in words[start:end]) / (end - start)
                entities.append({"text": text[first:last], "label": label, "start": first, "end": last, "score": score})
            results.append(entities)
        return results
