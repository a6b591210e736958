"""The shared generate(): validated options, greedy/beam/top-k/top-p relations, padding, seeds, streaming, CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
import torch
from nlpkit_generation.decoding import GenerationConfig, _sampling_filter, repeating_tokens
from nlpkit_generation.task import IGNORE, CausalLMTask, perplexity

from nlpkit import CausalTransformerEncoder, ConfigError, LSTMEncoder, Tokenizer
from nlpkit.testing import sentiment_corpus

PROMPTS = ["the film", "the acting was not", "a"]
ENCODERS = {
    "gpt": partial(CausalTransformerEncoder, d_model=32, num_heads=2, num_layers=2, dropout=0.0, max_length=64),
    "lstm": partial(LSTMEncoder, embedding_dim=16, hidden_size=16, tie_weights=True),
}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train([text for text, _ in sentiment_corpus(200)], vocab_size=60)


@pytest.fixture(params=sorted(ENCODERS), scope="module")
def model(request, tokenizer) -> CausalLMTask:
    torch.manual_seed(0)
    task = CausalLMTask(encoder=ENCODERS[request.param])
    task.bind(tokenizer, None)
    with torch.no_grad():  # sharpen the random model so that decisions are not near-ties
        for parameter in task.parameters():
            parameter.mul_(4.0)
    return task.eval()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": 0.7}, "'temperature' only applies to strategy 'sample'"),
        ({"strategy": "sample", "num_beams": 3}, "'num_beams' only applies to strategy 'beam'"),
        ({"strategy": "sample", "top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"strategy": "sample", "temperature": 0.0}, "temperature must be > 0"),
        ({"min_new_tokens": 9, "max_new_tokens": 4}, "min_new_tokens must be between"),
        ({"strategy": "beam", "num_beams": 2, "num_return_sequences": 3}, "num_return_sequences must be between"),
        ({"strategy": "nucleus"}, "strategy must be greedy, sample or beam"),
    ],
)
def test_combinations_that_cannot_work_are_errors(options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        GenerationConfig(**options)


def test_switching_strategy_drops_the_old_strategys_options() -> None:
    sampling = GenerationConfig("sample", temperature=0.7, top_p=0.9, max_new_tokens=5)
    assert sampling.replace(strategy="greedy") == GenerationConfig(max_new_tokens=5)
    assert sampling.replace(strategy="beam", num_beams=2).num_beams == 2
    with pytest.raises(ConfigError, match="'top_k' only applies to strategy 'sample'"):
        sampling.replace(strategy="greedy", top_k=3)


def test_greedy_equals_one_beam_and_top_k_one(model) -> None:
    greedy = model.generate(PROMPTS, max_new_tokens=10)
    one_beam = model.generate(PROMPTS, max_new_tokens=10, strategy="beam", num_beams=1, length_penalty=0.0)
    top_1 = model.generate(PROMPTS, max_new_tokens=10, strategy="sample", top_k=1, seed=3)
    assert [g.tokens for g in greedy] == [g.tokens for g in one_beam] == [g.tokens for g in top_1]
    assert [g.score for g in greedy] == pytest.approx([g.score for g in one_beam], abs=1e-4)


def test_beams_are_sorted_and_at_least_as_good_as_greedy(model) -> None:
    greedy = model.generate(PROMPTS, max_new_tokens=8)
    beams = model.generate(
        PROMPTS, max_new_tokens=8, strategy="beam", num_beams=4, length_penalty=0.0, num_return_sequences=4
    )
    for best, reference in zip(beams, greedy, strict=True):
        scores = [best.score] + [a.score for a in best.alternatives]
        assert len(scores) == 4 and scores == sorted(scores, reverse=True)
        assert best.score >= reference.score - 1e-5


def test_every_beams_score_is_its_log_probability_recomputed_without_a_cache(model) -> None:
    """Beam search reorders (or, when no beam moved, keeps) the cache; a wrong row would change the scores."""
    beams = model.generate(
        PROMPTS, max_new_tokens=8, strategy="beam", num_beams=4, length_penalty=0.0, num_return_sequences=4
    )
    eos = model.tokenizer.eos_id
    for prompt, best in zip(model.tokenizer.encode(PROMPTS, add_bos=True), beams, strict=True):
        for beam in [best, *best.alternatives]:
            targets = beam.tokens + ([eos] if len(beam.tokens) < 8 else [])  # a beam that ended scored its </s>
            ids = torch.tensor([prompt + targets])
            with torch.no_grad():
                log_probs = model(ids, torch.ones_like(ids, dtype=torch.bool))[0].log_softmax(-1)
            expected = sum(float(log_probs[len(prompt) - 1 + i, token]) for i, token in enumerate(targets))
            assert beam.score == pytest.approx(expected, abs=1e-4)


def test_top_p_keeps_exactly_the_smallest_set_reaching_p() -> None:
    logits = torch.tensor([[0.5, 0.25, 0.125, 0.125]]).log()
    kept = lambda p: torch.isfinite(_sampling_filter(logits, GenerationConfig("sample", top_p=p)))[0].tolist()  # noqa: E731
    assert kept(0.4) == [True, False, False, False]
    assert kept(0.7) == [True, True, False, False]
    assert kept(0.76) == [True, True, True, False]
    assert kept(1.0) == [True, True, True, True]
    top2 = torch.isfinite(_sampling_filter(logits, GenerationConfig("sample", top_k=2)))[0].tolist()
    assert top2 == [True, True, False, False]


def test_padding_never_changes_a_prompts_continuation(model) -> None:
    alone = [model.generate([prompt], max_new_tokens=8)[0].tokens for prompt in PROMPTS]
    together = [g.tokens for g in model.generate(PROMPTS, max_new_tokens=8)]
    assert alone == together


def test_seeded_sampling_repeats_and_stop_and_length_limits(model) -> None:
    sample = partial(model.generate, PROMPTS, max_new_tokens=12, strategy="sample", temperature=1.5)
    assert [g.text for g in sample(seed=7)] == [g.text for g in sample(seed=7)]
    assert [g.tokens for g in sample(seed=7)] != [g.tokens for g in sample(seed=8)]
    assert all(len(g.tokens) == 5 for g in model.generate(PROMPTS, max_new_tokens=5, min_new_tokens=5))
    free = model.generate(["the"], max_new_tokens=12, min_new_tokens=8)[0].text
    stop = free.strip()[1:3]
    assert len(stop) == 2
    cut = model.generate(["the"], max_new_tokens=12, min_new_tokens=8, stop=[stop])[0].text
    assert stop not in cut and free.startswith(cut)


def test_streaming_yields_the_same_text(model) -> None:
    for options in ({}, {"strategy": "sample", "seed": 1, "temperature": 1.3}, {"stop": ["e"]}):
        pieces = list(model.stream("the plot", max_new_tokens=10, min_new_tokens=4, **options))
        assert "".join(pieces) == model.generate(["the plot"], max_new_tokens=10, min_new_tokens=4, **options)[0].text
        if "stop" in options:
            assert "e" not in "".join(pieces)
        else:
            assert len(pieces) >= 4
    with pytest.raises(ConfigError, match="streaming works with strategy greedy or sample"):
        list(model.stream("the", strategy="beam"))


def test_streams_resumed_on_other_threads_between_other_work_give_their_own_text_and_leave_no_mode(model) -> None:
    """Three streams advanced in turns, each step on whichever of four threads is free, with whole generations in
    between (what a server's model thread and worker threads do): each stream gives its text, and no thread is left
    in inference mode or the model in another mode after a step."""
    options = {"max_new_tokens": 8, "min_new_tokens": 8}
    expected = [g.text for g in model.generate(PROMPTS, **options)]
    streams = [model.stream(prompt, **options) for prompt in PROMPTS]
    pieces: list[list[str]] = [[] for _ in PROMPTS]

    def step(index: int) -> tuple[str | None, bool]:
        piece = next(streams[index], None)
        return piece, torch.is_inference_mode_enabled()

    model.train()
    with ThreadPoolExecutor(max_workers=4) as threads:
        live = set(range(len(PROMPTS)))
        turn = 0
        while live:
            index = sorted(live)[turn % len(live)]
            piece, left_in_inference_mode = threads.submit(step, index).result()
            assert not left_in_inference_mode and model.training
            if piece is None:
                live.discard(index)
            else:
                pieces[index].append(piece)
            if turn % 3 == 0:
                assert threads.submit(lambda: model.generate(PROMPTS[:1], **options)[0].text).result() == expected[0]
            turn += 1
    model.eval()  # the fixture's mode again (after a failure the module's later tests would show it too)
    assert ["".join(own) for own in pieces] == expected


def test_max_time_stops_decoding_with_what_it_has(model) -> None:
    long = {"max_new_tokens": 30, "min_new_tokens": 30}  # no end-of-sequence before 30 tokens
    first = model.generate(PROMPTS, max_new_tokens=1)
    for strategy in ({}, {"strategy": "beam", "num_beams": 2}):
        assert all(len(g.tokens) == 30 for g in model.generate(PROMPTS, **long, **strategy))
        stopped = model.generate(PROMPTS, **long, **strategy, max_time=1e-9)  # past its time after the first step
        assert all(len(g.tokens) == 1 for g in stopped)
        if not strategy:
            assert [g.tokens for g in stopped] == [g.tokens for g in first]
    assert "".join(model.stream(PROMPTS[0], **long, max_time=1e-9)) == first[0].text
    with pytest.raises(ConfigError, match="max_time must be > 0"):
        GenerationConfig(max_time=0)


def test_perplexity_metric_equals_exp_mean_nll_by_hand() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=generator)
    targets = torch.randint(0, 7, (3, 5), generator=generator)
    targets[0, 3:] = IGNORE
    targets[2, 1:] = IGNORE
    nll, count = 0.0, 0
    for b in range(3):
        for t in range(5):
            if targets[b, t] != IGNORE:
                nll -= logits[b, t].log_softmax(-1)[targets[b, t]].item()
                count += 1
    metric = perplexity()
    metric.update(logits, targets)
    assert metric.compute().item() == pytest.approx(math.exp(nll / count), rel=1e-5)


def test_generate_command(model, tmp_path, capsys) -> None:
    import pytorch_lightning as pl

    from nlpkit.cli.main import main

    path = tmp_path / "lm.ckpt"
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    expected = model.generate(["the film"], max_new_tokens=6)[0].text
    command = [sys.executable, "-m", "nlpkit", "generate", "--ckpt_path", str(path), "--prompt", "the film"]
    result = subprocess.run([*command, "--max_new_tokens", "6"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "the film" + expected
    arguments = command[3:]  # the rest in-process, as the console script runs main()
    assert main([*arguments, "--max_new_tokens", "6", "--stream"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "the film" + expected
    assert main([*arguments, "--temperature", "0.5"]) == 2
    assert "'temperature' only applies to strategy 'sample'" in capsys.readouterr().err


def test_repetition_penalty_discourages_repeats(model) -> None:
    def repeats(generations) -> int:
        return sum(len(g.tokens) - len(set(g.tokens)) for g in generations)

    plain = model.generate(PROMPTS, max_new_tokens=12, min_new_tokens=12)
    penalised = model.generate(PROMPTS, max_new_tokens=12, min_new_tokens=12, repetition_penalty=50.0)
    assert repeats(penalised) < repeats(plain)


def ngram_repeats(tokens: list[int], size: int) -> int:
    """How many of ``tokens``' n-grams of ``size`` occurred before (brute force)."""
    grams = [tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
    return len(grams) - len(set(grams))


def test_repeating_tokens_are_what_a_brute_force_search_would_forbid() -> None:
    histories = [[5, 6, 7, 5, 6], [1, 1, 1], [3, 4], [2, 9, 2, 8, 2]]
    for history in histories:
        for size in (1, 2, 3):
            forbidden = {t for t in range(10) if ngram_repeats([*history, t], size) > ngram_repeats(history, size)}
            assert repeating_tokens(history, size) == forbidden, (history, size)


@pytest.mark.parametrize("options", [{}, {"strategy": "beam", "num_beams": 3}], ids=["greedy", "beam"])
def test_no_repeat_ngram_size_forbids_every_repeated_ngram(model, options) -> None:
    free = model.generate(PROMPTS, max_new_tokens=24, min_new_tokens=24, **options)
    assert sum(ngram_repeats(g.tokens, 2) for g in free) > 0  # the sharpened random model loops
    guarded = model.generate(PROMPTS, max_new_tokens=24, min_new_tokens=24, no_repeat_ngram_size=2, **options)
    assert all(len(g.tokens) == 24 and ngram_repeats(g.tokens, 2) == 0 for g in guarded)
    with pytest.raises(ConfigError, match="no_repeat_ngram_size must be >= 0"):
        GenerationConfig(no_repeat_ngram_size=-1)


def test_exported_logits_score_texts_as_eager_and_generation_needs_the_checkpoint(model, tmp_path) -> None:
    from nlpkit import ConfigError
    from nlpkit.testing import check_export

    texts = [text for text, _ in sentiment_corpus(12, seed=4)]
    loaded = check_export(model, texts, tmp_path / "lm")
    for eager, exported in zip(model.score(texts), loaded.score(texts), strict=True):
        assert exported["log_likelihood"] == pytest.approx(eager["log_likelihood"], abs=1e-3)
    with pytest.raises(ConfigError, match=r"generation .* needs the model's weights: load the checkpoint"):
        loaded.generate(texts[:1])
