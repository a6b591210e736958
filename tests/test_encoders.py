"""The built-in encoders: padding invariance, causality, cached decoding, RNN semantics, gradients, bf16."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.testing import assert_close
from torch.utils._python_dispatch import TorchDispatchMode

from nlpkit.models.encoders.base import Encoder
from nlpkit.models.encoders.cnn import CNNEncoder
from nlpkit.models.encoders.concat import ConcatEncoder
from nlpkit.models.encoders.head_loss import head_cross_entropy
from nlpkit.models.encoders.linear import _HAS_ONEDNN_LINEAR, PACKED_ROWS, _uses_packed, linear, packed_inference
from nlpkit.models.encoders.ngram import NGramEncoder
from nlpkit.models.encoders.pretrained import PretrainedEncoder
from nlpkit.models.encoders.rnn import ElmanRNNEncoder, GRUEncoder, LSTMEncoder, RecurrentEncoder
from nlpkit.models.encoders.transformer import CausalTransformerEncoder, TransformerEncoder
from nlpkit.plugin.loader import registry
from nlpkit.testing import EncoderContract

VOCAB = 23
TINY_RNN = {"embedding_dim": 6, "hidden_size": 8, "num_layers": 2, "dropout": 0.1}
TINY_TRANSFORMER = {"d_model": 16, "num_heads": 2, "num_layers": 2, "dim_feedforward": 24, "max_length": 64}
TINY_HUGGING_FACE = {
    "vocab_size": VOCAB, "hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 2,
    "intermediate_size": 24, "max_position_embeddings": 66, "pad_token_id": 1,
}  # fmt: skip

CAUSAL: dict[str, Callable[[int], Encoder]] = {
    "elman": partial(ElmanRNNEncoder, **TINY_RNN),
    "lstm": partial(LSTMEncoder, **TINY_RNN),
    "gru": partial(GRUEncoder, **TINY_RNN),
    **{
        f"causal-{kind}": partial(CausalTransformerEncoder, positions=kind, **TINY_TRANSFORMER)
        for kind in ("learned", "sinusoidal", "rotary")
    },
    "concat-causal": partial(
        ConcatEncoder, encoders=[partial(GRUEncoder, **TINY_RNN), partial(CausalTransformerEncoder, **TINY_TRANSFORMER)]
    ),
}
BIDIRECTIONAL: dict[str, Callable[[int], Encoder]] = {
    "elman-bi": partial(ElmanRNNEncoder, bidirectional=True, **TINY_RNN),
    "lstm-bi": partial(LSTMEncoder, bidirectional=True, **TINY_RNN),
    "gru-bi": partial(GRUEncoder, bidirectional=True, **TINY_RNN),
    **{
        f"transformer-{kind}": partial(TransformerEncoder, positions=kind, **TINY_TRANSFORMER)
        for kind in ("learned", "sinusoidal", "rotary")
    },
    "cnn": partial(CNNEncoder, embedding_dim=6, num_filters=4, kernel_sizes=[2, 3], dropout=0.1),
    "ngram": partial(NGramEncoder, dim=6, ngrams=3, buckets=101, dropout=0.1),
    "concat": partial(
        ConcatEncoder,
        encoders=[partial(NGramEncoder, dim=6, buckets=101), partial(LSTMEncoder, bidirectional=True, **TINY_RNN)],
    ),
    **{  # converted Hugging Face architectures (their weights: tests/test_pretrained.py)
        f"pretrained-{family}": partial(PretrainedEncoder, config={"model_type": family, **TINY_HUGGING_FACE})
        for family in ("bert", "roberta")
    },
}
ENCODERS = CAUSAL | BIDIRECTIONAL


# Every configuration keeps the encoder contract (nlpkit.testing.EncoderContract): padding invariance,
# honest causality, cached decoding equal to recomputation, specs that rebuild the module.
CONTRACTS = {
    name: type(f"Test{name.title().replace('-', '')}Contract", (EncoderContract,), {"make_encoder": make})
    for name, make in ENCODERS.items()
}
globals().update({contract.__name__: contract for contract in CONTRACTS.values()})


def test_every_registered_encoder_has_a_contract_test() -> None:
    """The meta-test: a registered encoder class that no contract subclass builds is a gap in these tests."""
    covered = {type(contract.make_encoder(VOCAB)) for contract in EncoderContract.__subclasses__()}
    assert {entry.obj for entry in registry("encoders").entries()} <= covered


def build(name: str, seed: int = 0, vocab_size: int = VOCAB) -> Encoder:
    """A seeded encoder in eval mode."""
    torch.manual_seed(seed)
    return ENCODERS[name](vocab_size).eval()


def random_sequences(lengths: list[int], seed: int = 0) -> list[list[int]]:
    """Token lists of the given lengths, without the pad id 0."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(1, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def pad(sequences: list[list[int]], side: str, length: int | None = None) -> tuple[Tensor, Tensor]:
    """Pad token lists on ``side`` to a batch: tokens (B, T) and mask (B, T)."""
    length = length or max(len(s) for s in sequences)
    tokens = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        columns = slice(0, len(sequence)) if side == "right" else slice(length - len(sequence), length)
        tokens[row, columns] = torch.tensor(sequence, dtype=torch.long)
    return tokens, tokens != 0


def encode_alone(model: Encoder, sequence: list[int]) -> Tensor:
    """Encode one unpadded sequence: (T, H)."""
    tokens = torch.tensor([sequence])
    return model(tokens, torch.ones_like(tokens, dtype=torch.bool))[0]


@pytest.mark.parametrize("cls", [ElmanRNNEncoder, LSTMEncoder, GRUEncoder])
def test_bidirectional_rnn_is_a_forward_and_a_reversed_pass(cls: type[RecurrentEncoder]) -> None:
    torch.manual_seed(0)
    model = cls(VOCAB, embedding_dim=6, hidden_size=8, bidirectional=True).eval()
    weights = model.rnn.state_dict()
    forward, backward = (cls.rnn_type(6, 8, batch_first=True) for _ in range(2))
    forward.load_state_dict({k: v for k, v in weights.items() if not k.endswith("_reverse")})
    reverse = {k.removesuffix("_reverse"): v for k, v in weights.items() if k.endswith("_reverse")}
    backward.load_state_dict(reverse)
    sequences = random_sequences([7, 3, 5])
    tokens, mask = pad(sequences, "right")
    with torch.no_grad():
        out = model(tokens, mask)
        for row, sequence in enumerate(sequences):
            x = model.token_embedding(torch.tensor([sequence]))  # (1, L, E)
            expected = torch.cat([forward(x)[0], backward(x.flip(1))[0].flip(1)], dim=-1)[0]
            assert_close(out[row, : len(sequence)], expected, atol=1e-6, rtol=0)
            assert out[row, len(sequence) :].eq(0).all()


def test_elman_rnn_follows_its_recurrence() -> None:
    torch.manual_seed(0)
    model = ElmanRNNEncoder(VOCAB, embedding_dim=6, hidden_size=8).eval()
    sequence = random_sequences([6])[0]
    rnn = model.rnn
    with torch.no_grad():
        h = torch.zeros(8)
        embedded = model.token_embedding(torch.tensor(sequence))  # (T, E)
        for x, out in zip(embedded, encode_alone(model, sequence), strict=True):
            h = torch.tanh(rnn.weight_hh_l0 @ h + rnn.weight_ih_l0 @ x + rnn.bias_hh_l0 + rnn.bias_ih_l0)
            assert_close(out, h, atol=1e-6, rtol=0)


def test_cnn_is_each_width_convolved_over_the_sequence_alone() -> None:
    model = build("cnn")
    sequences = random_sequences([5, 2, 7])
    tokens, mask = pad(sequences, "left")
    with torch.no_grad():
        out = model(tokens, mask)
        for row, sequence in enumerate(sequences):
            x = model.token_embedding(torch.tensor(sequence)).T  # (E, L)
            expected = []
            for convolution in model.convolutions:
                width = convolution.kernel_size[0]
                left = (width - 1) // 2  # "same": the extra zero of an even width goes on the right
                padded = F.pad(x, (left, width - 1 - left))
                windows = padded.unfold(1, width, 1)  # (E, L, width)
                expected.append(torch.einsum("elw,few->lf", windows, convolution.weight) + convolution.bias)
            assert_close(out[row][mask[row]], torch.relu(torch.cat(expected, dim=1)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["lstm", "lstm-bi", "transformer-rotary", "causal-learned", "cnn"])
def test_gradients_match_finite_differences(name: str) -> None:
    model = build(name, vocab_size=7).double()
    tokens, mask = pad([[1, 2, 3, 4, 5], [6, 2, 1]], "right")
    weight = model.token_embedding.weight.detach().clone().requires_grad_(True)

    def real_outputs(embedding: Tensor) -> Tensor:
        params = {"token_embedding.weight": embedding}
        return torch.func.functional_call(model, params, (tokens, mask))[mask]

    assert torch.autograd.gradcheck(real_outputs, (weight,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ENCODERS)
def test_same_seed_same_model_and_spec_rebuilds_it(name: str) -> None:
    tokens, mask = pad(random_sequences([4, 6]), "right")
    model = build(name)
    with torch.no_grad():
        out = model(tokens, mask)
        assert torch.equal(out, build(name)(tokens, mask))
        assert not torch.equal(out, build(name, seed=1)(tokens, mask))
        spec = model.spec()
        assert spec["class_path"] == f"{type(model).__module__}.{type(model).__qualname__}"
        rebuilt = type(model)(VOCAB, **spec["init_args"]).eval()
        rebuilt.load_state_dict(model.state_dict())
        assert torch.equal(out, rebuilt(tokens, mask))


@pytest.mark.parametrize("name", ENCODERS)
def test_bfloat16_autocast_is_finite_and_close_to_float32(name: str) -> None:
    model = build(name)
    tokens, mask = pad(random_sequences([6, 3]), "left")
    with torch.no_grad():
        reference = model(tokens, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(tokens, mask)
            if model.is_causal:
                cache = model.init_cache(2)
                chunks = [(0, 4), (4, 5), (5, 6)]  # a prefill, then one token at a time
                stepped = [model.step(tokens[:, a:b], mask[:, a:b], cache) for a, b in chunks]
                assert_close(torch.cat(stepped, dim=1).float()[mask], reference[mask], atol=0.1, rtol=0.05)
    assert out.float().isfinite().all()
    assert_close(out.float()[mask], reference[mask], atol=0.1, rtol=0.05)


@pytest.mark.parametrize("name", BIDIRECTIONAL)
def test_bidirectional_encoders_refuse_to_decode(name: str) -> None:
    model = build(name)
    assert not model.is_causal
    with pytest.raises(NotImplementedError):
        model.init_cache(1)
    with pytest.raises(NotImplementedError):
        model.step(torch.ones(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.bool), None)
    if isinstance(model, RecurrentEncoder):
        with pytest.raises(NotImplementedError):
            model.output_logits(torch.zeros(1, 1, model.output_dim))


def test_language_model_head_tying() -> None:
    hidden = torch.randn(2, 3, 16)
    tied = CausalTransformerEncoder(VOCAB, **TINY_TRANSFORMER)
    assert tied.lm_head is None
    assert_close(tied.output_logits(hidden), hidden @ tied.token_embedding.weight.T)
    untied = CausalTransformerEncoder(VOCAB, tie_weights=False, **TINY_TRANSFORMER)
    assert isinstance(untied.lm_head, nn.Linear)
    assert_close(untied.output_logits(hidden), untied.lm_head(hidden))
    assert LSTMEncoder(VOCAB, embedding_dim=8, hidden_size=8, tie_weights=True).lm_head is None
    with pytest.raises(ValueError, match="tie_weights"):
        LSTMEncoder(VOCAB, embedding_dim=6, hidden_size=8, tie_weights=True)


def test_kv_cache_overflow_is_an_error() -> None:
    model = build("causal-rotary")
    cache = model.init_cache(1, capacity=4)
    tokens = torch.ones(1, 3, dtype=torch.long)
    model.step(tokens, tokens.bool(), cache)
    with pytest.raises(ValueError, match="KV cache full"):
        model.step(tokens, tokens.bool(), cache)


@pytest.mark.parametrize(
    "make",
    [
        partial(LSTMEncoder, VOCAB, embedding_dim=8, hidden_size=8),
        partial(CausalTransformerEncoder, VOCAB, **TINY_TRANSFORMER),
    ],
    ids=["lstm", "gpt"],
)
def test_cache_select_reorders_rows_like_running_them_again(make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    tokens = torch.randint(4, VOCAB, (3, 5))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    cache = model.init_cache(3)
    model.step(tokens, mask, cache)
    rows = torch.tensor([2, 2, 0])
    cache.select(rows)
    following = torch.randint(4, VOCAB, (3, 1))
    expected_cache = model.init_cache(3)
    model.step(tokens[rows], mask, expected_cache)
    torch.testing.assert_close(
        model.step(following, mask[:, :1], cache), model.step(following, mask[:, :1], expected_cache)
    )


def test_cache_select_can_drop_rows() -> None:
    torch.manual_seed(0)
    model = CausalTransformerEncoder(VOCAB, **TINY_TRANSFORMER).eval()
    tokens = torch.randint(4, VOCAB, (3, 4))
    ones = torch.ones_like(tokens, dtype=torch.bool)
    cache, expected = model.init_cache(3), model.init_cache(2)
    model.step(tokens, ones, cache)
    cache.select(torch.tensor([2, 0]))  # finished rows leave the batch
    model.step(tokens[[2, 0]], ones[:2], expected)
    following = torch.randint(4, VOCAB, (2, 1))
    assert_close(model.step(following, ones[:2, :1], cache), model.step(following, ones[:2, :1], expected))


def test_cache_reorder_among_beams_moves_only_what_the_beams_do_not_share() -> None:
    torch.manual_seed(0)
    model = CausalTransformerEncoder(VOCAB, **TINY_TRANSFORMER).eval()
    prompts = torch.randint(4, VOCAB, (2, 5))
    mask = torch.ones_like(prompts, dtype=torch.bool)
    mask[0, :2] = False  # a left-padded prompt
    generated = torch.randint(4, VOCAB, (3, 6, 1))  # each beam's token at three steps
    beams, plain = model.init_cache(2), model.init_cache(2)
    for cache in (beams, plain):
        model.step(prompts, mask, cache)
        cache.select(torch.tensor([0, 0, 0, 1, 1, 1]))  # three beams per prompt
    for step, rows in enumerate(([2, 0, 0, 5, 3, 4], [1, 1, 2, 3, 3, 3])):  # the second reuses the spare buffer
        outputs = [model.step(generated[step], None, cache) for cache in (beams, plain)]
        assert_close(*outputs)
        beams.select(torch.tensor(rows), among_beams=True)
        plain.select(torch.tensor(rows))
    assert_close(model.step(generated[2], None, beams), model.step(generated[2], None, plain))


def _edit_in_place_through_data(layer: nn.Linear) -> None:
    layer.weight.data.mul_(-2)  # EMA and pruning code: bumps no version counter


def _round_trip_through_half(layer: nn.Linear) -> None:
    layer.half().float()  # the weight may come back at the same address and version


def _load_state_dict(layer: nn.Linear) -> None:
    layer.load_state_dict({"weight": torch.randn(40, 8), "bias": torch.randn(40)})


def _move_to_double_and_back(layer: nn.Linear) -> None:
    layer.double()
    with torch.no_grad():
        layer.weight.add_(1.0)
    layer.float()


def _fused_optimizer_step(layer: nn.Linear) -> None:
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True)  # updates without bumping versions
    layer(torch.randn(3, 8)).square().sum().backward()
    optimizer.step()


def _train_and_edit(layer: nn.Linear) -> None:
    layer.train()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(40, 8))
    layer.eval()


def _new_storage(layer: nn.Linear) -> None:
    layer.weight.data = torch.randn(40, 8)


@pytest.mark.parametrize(
    "edit",
    [
        _edit_in_place_through_data,
        _round_trip_through_half,
        _load_state_dict,
        _move_to_double_and_back,
        _fused_optimizer_step,
        _train_and_edit,
        _new_storage,
    ],
)
def test_packed_inference_never_uses_a_stale_weight(edit) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(8, 40).eval()
    x = torch.randn(2, 1, 8)

    def inference() -> Tensor:
        with packed_inference(), torch.inference_mode():
            packed = linear(x, layer.weight, layer.bias)
            assert _uses_packed(x, layer.weight) == _HAS_ONEDNN_LINEAR  # the span does pack (where torch can)
        with torch.no_grad():
            assert (packed - F.linear(x, layer.weight, layer.bias)).abs().max() < 1e-6
        return packed

    before = inference()
    edit(layer)
    assert not torch.allclose(inference(), before)  # the edit changed the function, and inference saw it


class ShapesSeen(TorchDispatchMode):
    """The row counts of the inputs that reach oneDNN's packed linear."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket is torch.ops.mkldnn._linear_pointwise:
            self.rows.add(args[0].numel() // args[0].shape[-1])
        return func(*args, **(kwargs or {}))


@pytest.mark.skipif(not _HAS_ONEDNN_LINEAR, reason="this torch build has no oneDNN packed linear")
def test_the_packed_linear_meets_only_its_row_counts_and_equals_f_linear() -> None:
    """oneDNN keeps a kernel of about a megabyte per input shape: every row count, and inputs of up to three
    dimensions, reach it padded to one of PACKED_ROWS (blocks of the last beyond), and the products stay equal."""
    torch.manual_seed(0)
    weight, bias = torch.randn(24, 16), torch.randn(24)
    seen = ShapesSeen()
    with torch.inference_mode(), packed_inference(), seen:
        for rows in [*range(1, 70), 255, 256, 257, 700]:
            x = torch.randn(rows, 16) if rows % 2 else torch.randn(rows // 2, 2, 16)
            assert (linear(x, weight, bias) - F.linear(x, weight, bias)).abs().max() < 1e-5
    assert seen.rows and seen.rows <= set(PACKED_ROWS)


def test_projections_pack_only_inside_a_span_and_spans_nest() -> None:
    weight, x = torch.randn(40, 8), torch.randn(2, 8)
    with torch.inference_mode():
        assert not _uses_packed(x, weight)  # outside a span: F.linear, nothing kept
        with packed_inference():
            with packed_inference():
                linear(x, weight)
            assert _uses_packed(x, weight) == _HAS_ONEDNN_LINEAR  # the inner span's end drops nothing
        assert not _uses_packed(x, weight)
    with packed_inference():
        assert linear(x, weight.requires_grad_()).requires_grad  # with autograd on: nn.Linear's own product


@pytest.mark.parametrize("weight_trains", [True, False])
def test_head_cross_entropy_equals_cross_entropy_of_the_full_logits(weight_trains) -> None:
    torch.manual_seed(0)
    hidden = torch.randn(23, 8, requires_grad=True)  # three chunks of 8 rows, the last one short
    weight = torch.randn(30, 8, requires_grad=weight_trains)
    targets = torch.randint(0, 30, (23,))
    targets[[0, 9, 22]] = -100  # padding after each sequence's end
    chunked = head_cross_entropy(hidden, weight, targets, chunk_rows=8)
    full = F.cross_entropy(hidden @ weight.T, targets, ignore_index=-100)
    assert_close(chunked, full)
    grads = torch.autograd.grad(3.0 * chunked, [hidden, weight] if weight_trains else [hidden])
    expected = torch.autograd.grad(3.0 * full, [hidden, weight] if weight_trains else [hidden])
    for got, want in zip(grads, expected, strict=True):
        assert_close(got, want)
    nothing = torch.full((23,), -100)
    assert head_cross_entropy(hidden, weight, nothing).isnan()  # as F.cross_entropy: a mean over no target


def test_a_span_ended_on_another_thread_closes_the_one_it_began_on() -> None:
    """A generator that opens a span may be resumed, and end, on another thread (a server's worker threads)."""
    weight, x = torch.randn(40, 8), torch.randn(2, 8)

    def spanning() -> Iterator[None]:
        with packed_inference():
            yield

    steps = spanning()
    next(steps)  # begun on this thread
    with torch.inference_mode():
        assert _uses_packed(x, weight) == _HAS_ONEDNN_LINEAR
    with ThreadPoolExecutor(max_workers=1) as other:
        other.submit(next, steps, None).result()  # ended there, without an error
    with torch.inference_mode():
        assert not _uses_packed(x, weight)
