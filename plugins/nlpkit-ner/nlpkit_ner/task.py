"""Token classification (NER): subword-aligned word tags, a softmax or CRF head, entities with character offsets."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nlpkit import (
    CheckpointError,
    ConfigError,
    EncoderFactory,
    HeadFactory,
    LinearHead,
    Record,
    StepOutput,
    Task,
    Tokenizer,
    WordVectors,
    WordVectorsOptions,
    pad,
)
from nlpkit_ner.chars import CharEncoder, CharFeatures, char_feature_dim, char_ids
from nlpkit_ner.crf import CRF
from nlpkit_ner.features import FeatureTemplateOptions, WordFeatures
from nlpkit_ner.tags import Scheme, Span, allowed_transitions, check_tags, spans, tags_of
from nlpkit_ner.vectors import WordVectorFeatures
from nlpkit_ner.words import join_words, split_words, stitch, windows

SubwordPooling = Literal["first", "mean", "max"]
WordFeaturesAt = Literal["head", "encoder"]
#: the batch tensors the forward reads after tokens, mask and firsts, when the task has them (in its argument order)
OPTIONAL_INPUTS = ("chars", "ends", "vectors", "feature_ids")


def word_spans(firsts: Tensor, ends: Tensor, pieces: int) -> Tensor:
    """Which pieces ``(B, W, P)`` belong to each word (its pieces ``firsts:ends``, end exclusive)."""
    positions = torch.arange(pieces, device=firsts.device)  # (P,)
    return (positions >= firsts[..., None]) & (positions < ends[..., None])


def pool_words(hidden: Tensor, firsts: Tensor, ends: Tensor | None, kind: SubwordPooling) -> Tensor:
    """One state per word ``(B, W, H)`` from piece states ``(B, P, H)``: its first piece's, or the mean or max over
    its pieces ``firsts:ends`` (exclusive end); a padded word (``ends == firsts``) reads its first position."""
    first = hidden.gather(1, firsts[..., None].expand(-1, -1, hidden.size(-1)))  # (B, W, H)
    if kind == "first":
        return first
    spans = word_spans(firsts, ends, hidden.size(1))  # type: ignore[arg-type]  # (B, W, P)
    if kind == "mean":
        weights = spans.to(hidden.dtype)
        pooled = weights @ hidden / weights.sum(-1, keepdim=True).clamp_min(1)  # (B, W, H)
    else:
        pooled = hidden[:, None].masked_fill(~spans[..., None], torch.finfo(hidden.dtype).min).amax(2)
    return torch.where(spans.any(-1, keepdim=True), pooled, first)


def _rows(examples: list[dict[str, Any]], key: str) -> list[Any]:
    """Every window's entry under ``key``, example after example: the rows of a batch."""
    return [row for example in examples for row in example[key]]


def _pad_words(rows: list[list[list[int]]], words: int) -> Tensor:
    """Per-word id lists (characters, feature rows) of every row as ``(B, words, longest)``, 0-padded."""
    longest = max((len(ids) for row in rows for ids in row), default=1)
    padded = torch.zeros(len(rows), words, max(longest, 1), dtype=torch.long)
    for row, row_words in enumerate(rows):
        for column, ids in enumerate(row_words):
            padded[row, column, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return padded


def _per_example(per_row: list[list[Any]], batch: dict[str, Any]) -> list[list[Any]]:
    """Per-word values of a batch's rows (windows) as one value per word of each example (see :func:`stitch`)."""
    results, row = [], 0
    for ranges in batch["windows"]:
        results.append(stitch(per_row[row : row + len(ranges)], ranges))
        row += len(ranges)
    return results


class TokenClassificationTask(Task):
    """Tags every word: the word's label is learned and read from its pieces' states (the first one's, or their
    mean or max).

    Words are encoded piece by piece, as they are in context (WordPiece, BPE, SentencePiece or whole words); one
    label per word, so subword splits never shift a label. Predictions are entities ``{text, label, start, end,
    score}`` with character offsets in the input; raw text is split into words by :data:`nlpkit_ner.words.WORD`
    (runs of letters and digits, and single punctuation marks), and pre-tokenised input (``{"tokens": [...]}``) is
    taken as it is.

    A sentence longer than the tokenizer's ``max_length`` (the special tokens and the pieces) is read, in training
    and in prediction, in windows of whole words that overlap by ``stride`` words (see
    :func:`nlpkit_ner.words.windows`), so an entity far into a long text is found like one at its start. Each window
    is tagged on its own; a word in two windows keeps the tag of the one where it sits further from the edge (the
    overlap is split at its middle), so a word at a window's edge is tagged with the context the other window gives
    it.

    :param head: maps each word's state to tag scores (``linear``, ``mlp`` or a plugin's)
    :param crf: decode with a linear-chain CRF whose transitions forbid invalid moves (else a softmax per word)
    :param char_features: add a character CNN or BiLSTM feature to every word (helps models trained from scratch)
    :param stride: words shared by consecutive windows of a long sentence (at most half a window)
    :param subword_pooling: a word's state is its ``first`` piece's, or the ``mean`` or ``max`` over its pieces
    :param word_vectors: pretrained word vectors as a word feature (``{path, format, words, freeze}``; GloVe,
        word2vec or npy), each word looked up as it is, else lower-cased (its case stays in the character features)
    :param feature_templates: hashed word-feature templates (``{templates, neighbours, window, buckets, dim}``,
        :mod:`nlpkit_ner.features`): the word's form, case, affixes, shape and scripts and its neighbours', as a
        feature CRF reads them
    :param word_features: where the character, word-vector and template features join: the ``head`` (beside the
        encoder's word states) or the ``encoder`` (beside the token embeddings of each word's pieces, as in Lample
        et al. 2016: the encoder then reads them in context)

    The tag scheme (IOB2 or BIOES) is the one of the labels, which the data module converts the files into.
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        head: HeadFactory = LinearHead,
        crf: bool = True,
        char_features: CharFeatures = "none",
        stride: int = 32,
        subword_pooling: SubwordPooling = "first",
        word_vectors: WordVectorsOptions | None = None,
        feature_templates: FeatureTemplateOptions | None = None,
        word_features: WordFeaturesAt = "head",
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if stride < 0:
            raise ConfigError(f"stride must be a number of words >= 0, got {stride}")
        if subword_pooling not in ("first", "mean", "max"):
            raise ConfigError(f"subword_pooling must be first, mean or max, not {subword_pooling!r}")
        if word_features not in ("head", "encoder"):
            raise ConfigError(f"word_features must be head or encoder, not {word_features!r}")
        default_metrics = ["entity-f1", "entity-precision", "entity-recall", "token-accuracy"]
        super().__init__(encoder, metrics=default_metrics if metrics is None else metrics, **kwargs)
        self.head_factory = head
        self.use_crf = crf
        self.char_features = char_features
        self.stride = stride
        self.subword_pooling = subword_pooling
        self.word_vectors_options = WordVectorsOptions.of(word_vectors)
        self.feature_template_options = FeatureTemplateOptions.of(feature_templates)
        self.word_features = word_features
        self._vectors: WordVectors | None = None  # read on first use, or restored from a checkpoint's artifacts

    # -- word features: characters, pretrained vectors and templates --------------------------------------------
    def _word_vectors(self) -> WordVectors | None:
        if self.word_vectors_options is not None and self._vectors is None:
            self._vectors = WordVectors.read(self.word_vectors_options)
        return self._vectors

    def _word_feature_dim(self) -> int:
        vectors, templates = self._word_vectors(), self.feature_template_options
        return (
            char_feature_dim(self.char_features)
            + (vectors.dim if vectors is not None else 0)
            + (templates.dim if templates is not None else 0)
        )

    def encoder_features(self) -> int:
        """With ``word_features: encoder``, the width of the character, vector and template features of each word."""
        return self._word_feature_dim() if self.word_features == "encoder" else 0

    def artifacts(self) -> dict[str, Any]:
        """The word vectors' vocabulary (their table is in the weights)."""
        vectors = self._word_vectors()
        return {} if vectors is None else {"vector_words": vectors.words, "vector_dim": vectors.dim}

    def restore_artifacts(self, artifacts: dict[str, Any]) -> None:
        """The vectors' vocabulary, their table to be filled in by the weights (a hostile vocabulary or width is
        refused before anything is allocated)."""
        if "vector_words" in artifacts:
            words, dim = artifacts["vector_words"], artifacts.get("vector_dim")
            plain = isinstance(words, list) and all(isinstance(word, str) for word in words)
            if not plain or isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim * len(words) <= 2**30:
                raise CheckpointError("the word vectors' vocabulary is not a list of words with a width (at most "
                                      "2**30 numbers in all)")  # fmt: skip
            self._vectors = WordVectors(words, np.zeros((len(words), dim), dtype=np.float32))

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
        vectors = self._word_vectors()
        freeze = self.word_vectors_options is None or self.word_vectors_options.freeze
        self.vectors = WordVectorFeatures(vectors, freeze) if vectors is not None else None
        templates = self.feature_template_options
        self.templates = WordFeatures(templates) if templates is not None else None
        at_head = self._word_feature_dim() if self.word_features == "head" else 0
        self.head = self.head_factory(self.encoder.output_dim + at_head, len(self.labels))
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
        """Per window of the sentence: the start token (``<s>``, ``[CLS]``), its words' pieces (and the end token when
        the tokenizer closes inputs: ``[SEP]``), each word's first and past-the-last piece positions, tag ids.

        ``windows`` holds the windows' word ranges; a word with more pieces than a window holds is cut to fit.
        """
        if not labeled and "offsets" not in fields:  # a raw text or words from a file: find the words' offsets
            fields = self.input_fields(fields.get("text", fields))
        tokens = fields["tokens"]
        tokenizer: Tokenizer = self.tokenizer  # type: ignore[assignment]
        closing = [tokenizer.eos_id] if tokenizer.closes_inputs else []
        budget = max(tokenizer.max_length - 1 - len(closing), 1)  # pieces per window between the special tokens
        pieces = [(word or [tokenizer.unk_id])[:budget] for word in tokenizer.encode_words(tokens)]
        ranges = windows([len(word) for word in pieces], budget, self.stride)
        example: dict[str, Any] = {"windows": ranges, "tokens": [], "firsts": [], "ends": []}
        for start, end in ranges:
            window, firsts, ends = [tokenizer.bos_id], [], []
            for word in pieces[start:end]:
                firsts.append(len(window))
                window.extend(word)
                ends.append(len(window))
            example["tokens"].append(window + closing)
            example["firsts"].append(firsts)
            example["ends"].append(ends)
        example["length"] = max(len(window) for window in example["tokens"])
        if self.char_features != "none":
            example["chars"] = [[char_ids(word) for word in tokens[start:end]] for start, end in ranges]
        if self.vectors is not None:
            example["vectors"] = [self.vectors.ids(tokens[start:end]) for start, end in ranges]
        if self.templates is not None:  # read over the whole sentence: a window's edge word sees its neighbours
            rows = self.templates.ids(tokens)
            example["feature_ids"] = [rows[start:end] for start, end in ranges]
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
        ends, _ = pad(_rows(examples, "ends"))
        batch: dict[str, Any] = {
            "tokens": tokens, "mask": mask, "firsts": firsts, "ends": ends, "word_mask": word_mask,
            "windows": [example["windows"] for example in examples],
            "index": torch.tensor([example["index"] for example in examples]),
        }  # fmt: skip
        for name in ("chars", "feature_ids"):
            if name in examples[0]:
                batch[name] = _pad_words(_rows(examples, name), firsts.size(1))
        if "vectors" in examples[0]:
            batch["vectors"], _ = pad(_rows(examples, "vectors"))
        if "tags" in examples[0]:
            batch["tags"], _ = pad(_rows(examples, "tags"))
            batch["gold"] = [example["gold"] for example in examples]
        if "offsets" in examples[0]:
            batch["text"] = [example["text"] for example in examples]
            batch["offsets"] = [example["offsets"] for example in examples]
        return batch

    def forward(
        self,
        tokens: Tensor,
        mask: Tensor,
        firsts: Tensor,
        chars: Tensor | None = None,
        ends: Tensor | None = None,
        vectors: Tensor | None = None,
        feature_ids: Tensor | None = None,
    ) -> Tensor:
        """Tag scores of every word ``(B, W, num_labels)``, from its pieces' states and its word features."""
        features = self._features(chars, vectors, feature_ids)  # (B, W, F) or None
        if features is not None and self.word_features == "encoder":  # every piece of a word reads its features
            spans = word_spans(firsts, ends, tokens.size(1)).to(features.dtype)  # type: ignore[arg-type]
            hidden = self.encoder(tokens, mask, spans.transpose(1, 2) @ features)  # (B, P, H)
        else:
            hidden = self.encoder(tokens, mask)  # (B, P, H)
        words = pool_words(hidden, firsts, ends, self.subword_pooling)  # (B, W, H)
        if features is not None and self.word_features == "head":
            words = torch.cat([words, features.to(words.dtype)], dim=-1)  # (B, W, H + F)
        return self.head(words).float()

    def _features(self, chars: Tensor | None, vectors: Tensor | None, feature_ids: Tensor | None) -> Tensor | None:
        """Each word's character, vector and template features ``(B, W, F)`` (None without any)."""
        parts = []
        if self.chars is not None:
            parts.append(self.chars(chars))
        if self.vectors is not None:
            parts.append(self.vectors(vectors))
        if self.templates is not None:
            parts.append(self.templates(feature_ids))
        return torch.cat(parts, dim=-1) if parts else None

    def _emissions(self, batch: dict[str, Any]) -> Tensor:
        return self(batch["tokens"], batch["mask"], batch["firsts"], *(batch.get(name) for name in OPTIONAL_INPUTS))

    def inference_inputs(self) -> tuple[str, ...]:
        """Exported forward: pieces, their mask, each word's first piece, the word mask (and characters, each
        word's end when it pools its pieces, vector rows and template feature rows)."""
        spread = self.subword_pooling != "first" or (self.encoder_features() and self.word_features == "encoder")
        optional = {
            "chars": self.chars is not None, "ends": spread, "vectors": self.vectors is not None,
            "feature_ids": self.templates is not None,
        }  # fmt: skip
        return ("tokens", "mask", "firsts", "word_mask", *(name for name, used in optional.items() if used))

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each word's best ``tags`` ``(B, W)`` (CRF Viterbi, in the exported graph too) and their ``scores``, the
        tag's probability under a softmax of the word's emissions."""
        optional = (inputs.get(name) for name in OPTIONAL_INPUTS)
        emissions = self(inputs["tokens"], inputs["mask"], inputs["firsts"], *optional)
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
