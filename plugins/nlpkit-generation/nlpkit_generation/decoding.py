"""One ``generate()`` for every decoder: greedy, sampling, beam search and streaming, with one validated config.

A task that generates implements :class:`Decoder`: ``start`` turns a batch of inputs (prompts for a language
model, sources for seq2seq) into next-token logits and a decoding state; ``extend`` feeds one token per row and
returns the next logits. The state has ``select(rows)`` so beam search can repeat and reorder rows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from nlpkit import ConfigError, Tokenizer


class DecodingState(Protocol):
    """Whatever a decoder carries between steps (KV caches, recurrent states, encoder outputs)."""

    def select(self, rows: Tensor, among_beams: bool = False) -> None:
        """Keep, repeat or reorder batch rows, in place; ``among_beams``: each row takes a row repeated from
        the same row by the last select without it (what those rows shared then need not move)."""


class Decoder(Protocol):
    """A model ``generate()`` can drive."""

    def start(self, inputs: list[list[int]], max_new_tokens: int) -> tuple[Tensor, DecodingState]:
        """Begin decoding ``inputs`` (token ids per row): next-token logits ``(B, V)`` and the state."""

    def extend(self, tokens: Tensor, state: DecodingState) -> Tensor:
        """Feed ``tokens`` ``(B,)``, one per row; return the next logits ``(B, V)``."""


Strategy = Literal["greedy", "sample", "beam"]
#: options that only mean something for one strategy
STRATEGY_OPTIONS = {
    "sample": ("temperature", "top_k", "top_p", "seed"),
    "beam": ("num_beams", "length_penalty", "num_return_sequences"),
}


@dataclass
class GenerationConfig:
    """How to generate; combinations that cannot work are errors, never silently ignored.

    :param strategy: greedy (argmax), sample (temperature, top-k, top-p, seed) or beam (num_beams, length_penalty)
    :param max_new_tokens: the most tokens to add
    :param min_new_tokens: end-of-sequence is not allowed before this many tokens
    :param temperature: sampling temperature (> 0); sample only
    :param top_k: sample among the k most likely tokens; sample only
    :param top_p: sample among the smallest set of tokens whose probability reaches p; sample only
    :param seed: the same seed gives the same text; sample only
    :param repetition_penalty: divides the logits of tokens already in the prompt or output (>= 1, 1 = off)
    :param no_repeat_ngram_size: no n-gram of this many tokens occurs twice in the output (a language model's
        prompt included; 0 = off), the guard against loops such as "and the sons of Israel, and the sons of ..."
    :param num_beams: beams per input; beam only
    :param length_penalty: beam scores are log-probabilities divided by length ** length_penalty; beam only
    :param num_return_sequences: how many finished beams to return per input (<= num_beams); beam only
    :param stop: strings that end the output (the output is cut before them)
    :param max_time: stop decoding after this many seconds and return what is there (a server's cap on how long
        one request holds the model; None = no limit)
    """

    strategy: Strategy = "greedy"
    max_new_tokens: int = 32
    min_new_tokens: int = 0
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_beams: int | None = None
    length_penalty: float | None = None
    num_return_sequences: int | None = None
    stop: list[str] = field(default_factory=list)
    max_time: float | None = None

    def __post_init__(self) -> None:
        if self.strategy not in ("greedy", "sample", "beam"):
            raise ConfigError(f"generation strategy must be greedy, sample or beam, not '{self.strategy}'")
        for strategy, names in STRATEGY_OPTIONS.items():
            for name in names:
                if getattr(self, name) is not None and self.strategy != strategy:
                    raise ConfigError(f"generation option '{name}' only applies to strategy '{strategy}'")
        checks = [
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
            (0 <= self.min_new_tokens <= self.max_new_tokens, "min_new_tokens must be between 0 and max_new_tokens"),
            (self.temperature is None or self.temperature > 0, "temperature must be > 0 (use greedy for 0)"),
            (self.top_k is None or self.top_k >= 1, "top_k must be >= 1"),
            (self.top_p is None or 0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.repetition_penalty >= 1, "repetition_penalty must be >= 1"),
            (self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be >= 0 (0 = off)"),
            (self.num_beams is None or self.num_beams >= 1, "num_beams must be >= 1"),
            (
                self.num_return_sequences is None or 1 <= self.num_return_sequences <= self.beams,
                "num_return_sequences must be between 1 and num_beams",
            ),
            (all(isinstance(s, str) and s for s in self.stop), "stop strings must be non-empty"),
            (self.max_time is None or self.max_time > 0, "max_time must be > 0 seconds (None = no limit)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"generation: {message}")

    def deadline(self) -> float:
        """The ``time.perf_counter()`` past which decoding that starts now stops (inf without ``max_time``)."""
        return float("inf") if self.max_time is None else time.perf_counter() + self.max_time

    @property
    def beams(self) -> int:
        """Beams per input (1 unless beam search)."""
        return (self.num_beams or 4) if self.strategy == "beam" else 1

    def replace(self, **changes: Any) -> GenerationConfig:
        """A validated copy with ``changes``; a new strategy drops the old strategy's own options."""
        current = dict(self.__dict__)
        if changes.get("strategy", self.strategy) != self.strategy:
            for name in STRATEGY_OPTIONS.get(self.strategy, ()):
                current[name] = None
        return GenerationConfig(**{**current, **changes})


@dataclass
class Generation:
    """One generated sequence: its text, its token ids (no end-of-sequence), and its score.

    ``score`` is the sum of log-probabilities (for beams divided by ``length ** length_penalty``);
    ``alternatives`` holds the other returned beams, best first.
    """

    text: str
    tokens: list[int]
    score: float
    alternatives: list[Generation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"text", "score"}``, plus ``alternatives`` (the same, each) when beam search returned several."""
        row: dict[str, Any] = {"text": self.text, "score": self.score}
        if self.alternatives:
            row["alternatives"] = [alternative.to_dict() for alternative in self.alternatives]
        return row


class _Rows:
    """Per-row bookkeeping shared by sampling and beam search: ids so far, text, stop checks."""

    def __init__(
        self, tokenizer: Tokenizer, inputs: list[list[int]], config: GenerationConfig, continues: bool, live: bool
    ) -> None:
        self.tokenizer, self.config = tokenizer, config
        self.live = live or bool(config.stop)  # decode text at every step (streaming, stop strings) or at the end
        self.prefixes = inputs if continues else [[] for _ in inputs]
        self.prefix_texts = [tokenizer.decode([p])[0] if p else "" for p in self.prefixes]

    def text(self, row: int, tokens: list[int]) -> tuple[str, bool]:
        """The text of ``tokens`` after input ``row`` (continuing it for language models), and whether a
        stop string ended it (the text is then cut before the stop string)."""
        full = self.tokenizer.decode([self.prefixes[row] + tokens])[0]
        text = full[len(self.prefix_texts[row]) :] if full.startswith(self.prefix_texts[row]) else full
        cuts = [text.find(stop) for stop in self.config.stop if stop in text]
        return (text[: min(cuts)], True) if cuts else (text, False)

    def stopped(self, row: int, tokens: list[int]) -> bool:
        """Whether a stop string ends ``tokens`` (only decoded when stop strings are set)."""
        return bool(self.config.stop) and self.text(row, tokens)[1]

    def histories(self, outputs: list[tuple[int, list[int]]]) -> list[list[int]] | None:
        """What the no-repeat n-gram rule reads of each ``(input row, output tokens)``: the output, after the
        prompt for a language model (None when the rule is off)."""
        if not self.config.no_repeat_ngram_size:
            return None
        return [self.prefixes[row] + tokens for row, tokens in outputs]


def repeating_tokens(history: list[int], size: int) -> set[int]:
    """The tokens that would complete, after ``history``, an n-gram of ``size`` tokens already in it."""
    if len(history) < size:
        return set()
    suffix = history[len(history) - size + 1 :]
    return {
        history[start + size - 1]
        for start in range(len(history) - size + 1)
        if history[start : start + size - 1] == suffix
    }


def _adjust(
    logits: Tensor,
    seen: Tensor | None,
    step: int,
    config: GenerationConfig,
    eos_id: int,
    histories: list[list[int]] | None = None,
) -> Tensor:
    """Repetition penalty, no-repeat n-grams (``histories``: each row's tokens so far) and the minimum length,
    applied to raw logits ``(N, V)``."""
    logits = logits.float()
    if seen is not None:
        penalised = torch.where(logits > 0, logits / config.repetition_penalty, logits * config.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    for row, history in enumerate(histories or ()):
        banned = repeating_tokens(history, config.no_repeat_ngram_size)
        if banned:
            logits[row, sorted(banned)] = float("-inf")
    if step < config.min_new_tokens:
        logits[:, eos_id] = float("-inf")
    return logits


def _sampling_filter(logits: Tensor, config: GenerationConfig) -> Tensor:
    """Temperature, top-k and top-p (nucleus) filtering of ``(N, V)`` logits."""
    logits = logits / (config.temperature or 1.0)
    if config.top_k is not None and config.top_k < logits.size(-1):
        kth = logits.topk(config.top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p is not None and config.top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        before = ordered.softmax(-1).cumsum(-1) - ordered.softmax(-1)  # probability mass ranked above each token
        logits = logits.masked_fill((before >= config.top_p).scatter(-1, order, before >= config.top_p), float("-inf"))
    return logits


def _mark_seen(seen: Tensor | None, rows: Tensor | None, tokens: Tensor) -> Tensor | None:
    """Keep ``rows`` (None: every row) of the seen-token table and add each row's new token (None: no
    repetition penalty)."""
    if seen is None:
        return None
    return (seen if rows is None else seen[rows]).scatter_(1, tokens[:, None], True)


def _initial_seen(rows: _Rows, vocab: int, device: torch.device) -> Tensor | None:
    """Which tokens each output already holds, for the repetition penalty (None when it is off).

    A language model's output continues its prompt, so the prompt counts; a translation's source does not.
    """
    if rows.config.repetition_penalty == 1.0:
        return None
    seen = torch.zeros(len(rows.prefixes), vocab, dtype=torch.bool, device=device)
    for row, ids in enumerate(rows.prefixes):
        seen[row, torch.as_tensor(ids, dtype=torch.long, device=device)] = True
    return seen


def _sample_steps(
    decoder: Decoder, inputs: list[list[int]], config: GenerationConfig, rows: _Rows, eos_id: int
) -> Iterator[dict[int, Generation]]:
    """Greedy or sampled decoding of every input; yields the generations so far after each step."""
    deadline = config.deadline()
    logits, state = decoder.start(inputs, config.max_new_tokens)
    generator = None
    if config.seed is not None:
        generator = torch.Generator(device=logits.device).manual_seed(config.seed)
    alive = list(range(len(inputs)))  # input index of each row still in ``state``
    seen = _initial_seen(rows, logits.size(-1), logits.device)
    results = {i: Generation("", [], 0.0) for i in alive}
    for step in range(config.max_new_tokens):
        histories = rows.histories([(index, results[index].tokens) for index in alive])
        scores = _adjust(logits, seen, step, config, eos_id, histories)
        if config.strategy == "greedy":
            chosen = scores.argmax(-1)  # (N,)
        else:
            chosen = torch.multinomial(_sampling_filter(scores, config).softmax(-1), 1, generator=generator)[:, 0]
        picked = scores.log_softmax(-1).gather(1, chosen[:, None])[:, 0].tolist()  # log-probabilities
        keep = []
        for position, (index, token) in enumerate(zip(alive, chosen.tolist(), strict=True)):
            result = results[index]
            if token == eos_id:
                continue
            result.tokens.append(token)
            result.score += picked[position]
            stopped = False
            if rows.live:
                result.text, stopped = rows.text(index, result.tokens)
            if not stopped and len(result.tokens) < config.max_new_tokens:
                keep.append(position)
        yield results
        if not keep or time.perf_counter() > deadline:
            return
        keep_rows = None
        if len(keep) < len(alive):  # some rows ended: drop them
            keep_rows = torch.tensor(keep, device=logits.device)
            state.select(keep_rows)
            alive, chosen = [alive[p] for p in keep], chosen[keep_rows]
        seen = _mark_seen(seen, keep_rows, chosen)
        logits = decoder.extend(chosen, state)


def _beam_search(
    decoder: Decoder, inputs: list[list[int]], config: GenerationConfig, rows: _Rows, eos_id: int
) -> list[Generation]:
    """Batched beam search: ``num_beams`` hypotheses per input, the state's rows reordered every step."""
    beams, penalty = config.beams, config.length_penalty if config.length_penalty is not None else 1.0
    deadline = config.deadline()
    logits, state = decoder.start(inputs, config.max_new_tokens)
    batch, vocab, device = len(inputs), logits.size(-1), logits.device
    expand = torch.arange(batch, device=device).repeat_interleave(beams)  # (B*K,)
    state.select(expand)
    logits = logits[expand]
    seen = _initial_seen(rows, vocab, device)
    seen = None if seen is None else seen[expand]
    beam_scores = torch.full((batch, beams), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0  # every beam starts identical: expand only the first
    sequences: list[list[int]] = [[] for _ in range(batch * beams)]
    unmoved = list(range(batch * beams))  # every beam extends itself
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]  # (normalised score, tokens)

    def finish(index: int, score: float, tokens: list[int]) -> None:
        finished[index].append((score / max(len(tokens), 1) ** penalty, tokens))

    for step in range(config.max_new_tokens):
        histories = rows.histories([(row // beams, sequence) for row, sequence in enumerate(sequences)])
        log_probs = _adjust(logits, seen, step, config, eos_id, histories).log_softmax(-1)  # (B*K, V)
        totals = (beam_scores.reshape(-1, 1) + log_probs).reshape(batch, beams * vocab)
        top_scores, top = totals.topk(2 * beams, dim=1)  # (B, 2K): enough to find K that do not end
        next_rows, next_tokens, next_scores = [], [], []
        for index in range(batch):
            chosen = 0
            for rank, (score, flat) in enumerate(zip(top_scores[index].tolist(), top[index].tolist(), strict=True)):
                if score == float("-inf"):
                    break
                row, token = index * beams + flat // vocab, flat % vocab
                tokens = [*sequences[row], token]
                if token == eos_id:
                    if rank < beams:
                        finish(index, score, sequences[row])
                    continue
                if rows.stopped(index, tokens):
                    finish(index, score, tokens)
                    continue
                next_rows.append(row)
                next_tokens.append(token)
                next_scores.append(score)
                chosen += 1
                if chosen == beams:
                    break
            while chosen < beams:  # pad with dead beams so every input keeps K rows
                next_rows.append(index * beams)
                next_tokens.append(eos_id)
                next_scores.append(float("-inf"))
                chosen += 1
        beam_scores = torch.tensor(next_scores, device=device).reshape(batch, beams)
        sequences = [[*sequences[row], token] for row, token in zip(next_rows, next_tokens, strict=True)]
        if _beams_done(finished, beam_scores, beams, step + 1, penalty) or time.perf_counter() > deadline:
            break
        rows_tensor = None
        if next_rows != unmoved:  # the state is reordered only when beams moved
            rows_tensor = torch.tensor(next_rows, device=device)
            state.select(rows_tensor, among_beams=True)
        tokens_tensor = torch.tensor(next_tokens, device=device)
        seen = _mark_seen(seen, rows_tensor, tokens_tensor)
        logits = decoder.extend(tokens_tensor, state)
    for index in range(batch):  # unfinished beams compete with the finished ones
        for k in range(beams):
            score = float(beam_scores[index, k])
            if score > float("-inf"):
                finish(index, score, sequences[index * beams + k])
    returned = config.num_return_sequences or 1
    results = []
    for index, candidates in enumerate(finished):
        ranked = [
            Generation(rows.text(index, tokens)[0], tokens, normalised)
            for normalised, tokens in sorted(candidates, key=lambda c: -c[0])
        ]
        best, *others = ranked[:returned] or [Generation("", [], float("-inf"))]
        best.alternatives = others
        results.append(best)
    return results


def _beams_done(
    finished: list[list[tuple[float, list[int]]]],
    beam_scores: Tensor,
    beams: int,
    length: int,
    penalty: float,
) -> bool:
    """Every input has no live beam left, or ``beams`` finished hypotheses its best live beam cannot beat."""
    for index, candidates in enumerate(finished):
        if float(beam_scores[index].max()) == float("-inf"):
            continue
        if len(candidates) < beams:
            return False
        worst_kept = sorted((c[0] for c in candidates), reverse=True)[beams - 1]
        if float(beam_scores[index].max()) / length**penalty > worst_kept:
            return False
    return True


@torch.inference_mode()
def generate(
    decoder: Decoder,
    inputs: list[list[int]],
    config: GenerationConfig,
    tokenizer: Tokenizer,
    continues_input: bool = True,
) -> list[Generation]:
    """Generate for every input (token ids); ``continues_input`` makes texts continue the input (language models)."""
    rows = _Rows(tokenizer, inputs, config, continues_input, live=False)
    if config.strategy == "beam":
        return _beam_search(decoder, inputs, config, rows, tokenizer.eos_id)
    (results,) = deque(_sample_steps(decoder, inputs, config, rows, tokenizer.eos_id), maxlen=1)  # the last step
    for index, result in results.items():
        result.text = rows.text(index, result.tokens)[0]
    return [results[i] for i in range(len(inputs))]


def stream(
    decoder: Decoder, inputs: list[int], config: GenerationConfig, tokenizer: Tokenizer, continues_input: bool = True
) -> Iterator[str]:
    """Yield the text of one input's generation piece by piece, as tokens are produced (greedy or sample).

    Text that could be the start of a stop string is held back until it is known not to be one. Each step runs in
    inference mode of its own and no mode is held across a yield, so the stream may be resumed on any thread (a
    server's model thread, between other requests' batches).
    """
    if config.strategy == "beam":
        raise ConfigError("streaming works with strategy greedy or sample, not beam")
    rows, sent, text = _Rows(tokenizer, [inputs], config, continues_input, live=True), 0, ""
    steps = _sample_steps(decoder, [inputs], config, rows, tokenizer.eos_id)
    while True:
        with torch.inference_mode():
            results = next(steps, None)
        if results is None:
            break
        text = results[0].text
        held = max((n for stop in config.stop for n in range(1, len(stop)) if text.endswith(stop[:n])), default=0)
        if len(text) - held > sent:
            yield text[sent : len(text) - held]
            sent = len(text) - held
    if len(text) > sent:
        yield text[sent:]
