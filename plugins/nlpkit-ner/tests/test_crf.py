"""The linear-chain CRF against brute-force enumeration, under constraints, with padding, and in training."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from nlpkit_ner.crf import CRF, FORBIDDEN_SCORE
from torch import Tensor

Masks = tuple[Tensor, Tensor, Tensor]  # allowed (C, C), allowed_start (C,), allowed_end (C,)


def bio_masks() -> Masks:
    """Tags O, B, I: no O -> I, no start in I, and (to exercise the end mask) no end in B."""
    allowed = torch.ones(3, 3, dtype=torch.bool)
    allowed[0, 2] = False
    return allowed, torch.tensor([True, True, False]), torch.tensor([True, False, True])


def bioes_masks() -> Masks:
    """Tags O, then B, I, E, S of PER and of LOC, with BIOES's allowed moves written out by hand."""
    begin, inside, end, single = [1, 5], [2, 6], [3, 7], [4, 8]
    outside = [0, *end, *single]  # tags after which a new chunk (or O) may come
    allowed = torch.zeros(9, 9, dtype=torch.bool)
    for tag in outside:
        allowed[tag, [0, *begin, *single]] = True
    for b, i, e in zip(begin, inside, end, strict=True):
        allowed[[b, i], i] = True
        allowed[[b, i], e] = True
    allowed_start = torch.zeros(9, dtype=torch.bool)
    allowed_start[[0, *begin, *single]] = True
    allowed_end = torch.zeros(9, dtype=torch.bool)
    allowed_end[outside] = True
    return allowed, allowed_start, allowed_end


def random_crf(num_tags: int, masks: Masks | None = None, seed: int = 0) -> CRF:
    """A CRF with N(0, 1) scores, so that transitions matter as much as emissions."""
    torch.manual_seed(seed)
    crf = CRF(num_tags, *(masks or ()))
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    return crf


def batch(lengths: list[int], num_tags: int, seed: int = 0, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Random emissions (B, T, C) with huge values in the padding, and the prefix mask (B, T) of ``lengths``."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.arange(max(lengths)) < torch.tensor(lengths).unsqueeze(1)  # (B, T)
    emissions = torch.randn(len(lengths), max(lengths), num_tags, generator=generator) * scale
    return emissions.masked_fill(~mask.unsqueeze(2), 1e3), mask


def penalised(crf: CRF, masks: Masks | None) -> tuple[Tensor, Tensor, Tensor]:
    """The CRF's transition, start and end scores (float64) with ``FORBIDDEN_SCORE`` added at forbidden moves."""
    scores = (crf.transitions, crf.start, crf.end)
    if masks is None:
        return tuple(score.detach().double() for score in scores)
    return tuple(
        score.detach().double() + torch.where(allowed, 0.0, FORBIDDEN_SCORE)
        for score, allowed in zip(scores, masks, strict=True)
    )


def is_allowed(path: tuple[int, ...], masks: Masks) -> bool:
    """Whether ``path`` starts, moves and ends only as ``masks`` allow."""
    allowed, allowed_start, allowed_end = masks
    moves = all(allowed[a, b] for a, b in itertools.pairwise(path))
    return bool(allowed_start[path[0]] and moves and allowed_end[path[-1]])


def enumerate_paths(crf: CRF, masks: Masks | None, emissions: Tensor) -> tuple[list[tuple[int, ...]], Tensor]:
    """Every tag path over ``emissions`` (L, C) and its score (C^L,) in float64, summed one step at a time."""
    transitions, start, end = penalised(crf, masks)
    emissions = emissions.double()
    paths = list(itertools.product(range(crf.num_tags), repeat=len(emissions)))
    scores = []
    for path in paths:
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
        scores.append(score + sum(transitions[a, b] for a, b in itertools.pairwise(path)))
    return paths, torch.stack(scores)


@pytest.mark.parametrize("masks", [None, bio_masks()], ids=["free", "constrained"])
def test_log_partition_and_score_match_brute_force(masks: Masks | None) -> None:
    crf = random_crf(3, masks)
    lengths = [4, 2, 1]
    emissions, mask = batch(lengths, 3)
    log_z = crf.log_partition(emissions, mask)
    for row, length in enumerate(lengths):
        paths, scores = enumerate_paths(crf, masks, emissions[row, :length])
        assert log_z[row].item() == pytest.approx(torch.logsumexp(scores, 0).item(), abs=1e-5)
        tags = torch.tensor(paths).repeat(1, 1 + 4 // length)[:, :4]  # padding tags are arbitrary
        many = crf.score(emissions[row].expand(len(paths), -1, -1), tags, mask[row].expand(len(paths), -1))
        torch.testing.assert_close(many.double(), scores, atol=1e-4, rtol=1e-5)
        if masks is not None:
            legal = torch.tensor([is_allowed(path, masks) for path in paths])
            assert 0 < legal.sum() < len(paths)
            assert log_z[row].item() == pytest.approx(torch.logsumexp(scores[legal], 0).item(), abs=1e-5)
            assert torch.logsumexp(scores[~legal], 0) - log_z[row] < -1000  # forbidden paths carry no mass


@pytest.mark.parametrize("masks", [None, bio_masks()], ids=["free", "constrained"])
def test_viterbi_matches_brute_force_argmax(masks: Masks | None) -> None:
    crf = random_crf(3, masks, seed=1)
    lengths = [4, 3, 1, 2, 4]
    for seed in range(4):
        emissions, mask = batch(lengths, 3, seed=seed)
        decoded = crf.decode(emissions, mask)
        for row, length in enumerate(lengths):
            paths, scores = enumerate_paths(crf, masks, emissions[row, :length])
            assert decoded[row] == list(paths[scores.argmax()])


@pytest.mark.parametrize("masks", [None, bio_masks()], ids=["free", "constrained"])
def test_likelihoods_of_all_paths_sum_to_one(masks: Masks | None) -> None:
    crf = random_crf(3, masks, seed=2)
    emissions, mask = batch([3, 5], 3, seed=2)
    for row in range(2):
        length = int(mask[row].sum())
        paths = torch.tensor(list(itertools.product(range(3), repeat=length)))  # (C^L, L)
        tags = torch.nn.functional.pad(paths, (0, 5 - length), value=-100)  # (C^L, 5), padded like real labels
        count = len(paths)
        log_p = crf.log_likelihood(emissions[row].expand(count, -1, -1), tags, mask[row].expand(count, -1))
        assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-5)


def test_constrained_decoding_never_emits_forbidden_moves() -> None:
    masks = bioes_masks()
    lengths = torch.randint(1, 13, (300,), generator=torch.Generator().manual_seed(3)).tolist()
    emissions, mask = batch(lengths, 9, seed=3, scale=4.0)
    constrained, free = random_crf(9, masks, seed=3), random_crf(9, seed=3)
    for decoded, crf in ((constrained.decode(emissions, mask), constrained), (free.decode(emissions, mask), free)):
        assert [len(path) for path in decoded] == lengths
        legal = [is_allowed(tuple(path), masks) for path in decoded]
        assert all(legal) if crf is constrained else not all(legal)


def test_training_lowers_the_loss_and_viterbi_recovers_the_pattern() -> None:
    torch.manual_seed(4)
    lengths = torch.randint(1, 9, (16,))
    mask = torch.arange(8) < lengths.unsqueeze(1)  # (B, T)
    first = torch.randint(0, 4, (16, 1))
    gold = (first + torch.arange(8)) % 4  # (B, T): each tag is followed by the next one, cyclically
    emissions = torch.randn(16, 8, 4) * 0.2
    emissions[torch.arange(16), 0, first.squeeze(1)] += 3.0  # only the first tag is visible in the emissions
    crf = CRF(4)
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.05)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = crf(emissions, gold, mask)
        loss.backward()
        assert all(parameter.grad.abs().sum() > 0 for parameter in crf.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    expected = [row[:length] for row, length in zip(gold.tolist(), lengths.tolist(), strict=True)]
    assert (emissions.argmax(2) == gold)[mask].float().mean() < 0.6  # the emissions alone do not give the tags
    assert crf.decode(emissions, mask) == expected


def test_padding_changes_neither_likelihood_nor_path() -> None:
    crf = random_crf(5, seed=5)
    emissions, mask = batch([7, 3, 5], 5, seed=5)
    tags = torch.randint(0, 5, (3, 7)).masked_fill(~mask, -100)
    alone_nll = crf.log_likelihood(emissions[1:2, :3], tags[1:2, :3], mask[1:2, :3])
    batch_nll = crf.log_likelihood(emissions, tags, mask)
    assert batch_nll[1].item() == pytest.approx(alone_nll.item(), abs=1e-5)
    assert crf.decode(emissions, mask)[1] == crf.decode(emissions[1:2, :3], mask[1:2, :3])[0]


def test_log_partition_gradient_gives_tag_marginals_and_ignores_padding() -> None:
    crf = random_crf(3, bio_masks(), seed=6)
    emissions, mask = batch([5, 2], 3, seed=6)
    emissions.requires_grad_(True)
    crf.log_partition(emissions, mask).sum().backward()
    marginals = emissions.grad  # (B, T, C): d log Z / d emission = p(tag at t)
    assert (marginals >= 0).all()
    torch.testing.assert_close(marginals.sum(2), mask.float())  # one per real position, zero in the padding
    assert marginals[:, 0, 2].max() < 1e-6  # no path starts in I


def test_float32_under_bf16_autocast_and_bf16_parameters() -> None:
    half = random_crf(3, bio_masks(), seed=7).to(torch.bfloat16)  # as Lightning's "bf16-true" precision leaves it
    full = copy.deepcopy(half).float()
    emissions, mask = batch([4, 2], 3, seed=7)
    emissions = emissions.bfloat16()
    tags = torch.randint(0, 3, (2, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = half(emissions, tags, mask)
        decoded = half.decode(emissions, mask)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, full(emissions.float(), tags, mask))
    assert decoded == full.decode(emissions.float(), mask)


def test_rejects_masks_that_are_not_prefixes() -> None:
    crf = CRF(3)
    emissions = torch.zeros(2, 3, 3)
    for mask in ([[1, 0, 1], [1, 1, 1]], [[1, 1, 1], [0, 0, 0]]):
        with pytest.raises(ValueError, match="prefix mask"):
            crf.log_partition(emissions, torch.tensor(mask, dtype=torch.bool))
