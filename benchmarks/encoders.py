"""Encoder speed: training throughput through nlpkit.Task + Lightning against a plain PyTorch loop of the same
model written here, model FLOPs utilization, and KV-cache generation against full recomputation.

Both sides of every comparison run in this process, with the same threads, dtype, data and optimizer
settings, after a warm-up; each figure is the median over repetitions. ``--tiny`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AUTOCAST_DTYPES, Device, emit, median_seconds, synthetic_tokenizer, timed_steps
from nlpkit_generation.task import CausalLMTask

from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.encoders.transformer import CausalTransformerEncoder
from nlpkit.models.tokenizers import Tokenizer

LEARNING_RATE, WEIGHT_DECAY, CLIP = 3e-4, 0.1, 1.0


# -- the reference models, written plainly --------------------------------------------------------------------
class RefBlock(nn.Module):
    """nanoGPT block: x + attn(ln(x)), x + mlp(ln(x)); causal SDPA."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, self.heads, C // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.mlp(self.ln_2(x))


class RefGPT(nn.Module):
    """nanoGPT decoder with learned positions and a tied output embedding."""

    def __init__(self, vocab: int, d: int, heads: int, layers: int, max_length: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(max_length, d)
        self.blocks = nn.ModuleList(RefBlock(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        for name, parameter in self.named_parameters():  # nanoGPT's initialisation
            if parameter.ndim >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(parameter, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(parameter)

    def forward(self, idx: Tensor) -> Tensor:
        """Logits (B, T, vocab)."""
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T


class RefLSTM(nn.Module):
    """Embedding, stacked LSTM, bias-free output projection."""

    def __init__(self, vocab: int, embedding: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab, bias=False)

    def forward(self, idx: Tensor) -> Tensor:
        """Logits (B, T, vocab)."""
        return self.out(self.lstm(self.embedding(idx))[0])


# -- training throughput -----------------------------------------------------------------------------------
def token_batches(vocab: int, batch: int, length: int, count: int) -> list[Tensor]:
    """``count`` fixed batches of ``length + 1`` random ids (no padding), the same for both sides."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(4, vocab, (batch, length + 1), generator=generator) for _ in range(count)]


def optimizer_for(
    model: nn.Module, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with nlpkit's parameter groups and a cosine schedule stepped every step, as the Task does."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n and "wte" not in n]
    keep = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n and "wte" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": keep, "weight_decay": 0.0}], lr=LEARNING_RATE
    )
    cosine = partial(
        lambda step, total: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / total, 1))), total=total_steps
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)


def chunk_rates(stamps: list[float], warmup: int, chunk: int, tokens_per_step: int) -> list[float]:
    """Tokens per second of each run of ``chunk`` steps after ``warmup`` steps, from per-step end times."""
    return [
        tokens_per_step * chunk / (stamps[start + chunk] - stamps[start])
        for start in range(warmup, len(stamps) - chunk, chunk)
    ]


def plain_loop(model: nn.Module, batches: list[Tensor], device: Device) -> list[float]:
    """The reference: forward, loss, backward, clip, step, schedule; returns each step's end time."""
    model.to(device.name)
    optimizer, scheduler = optimizer_for(model, len(batches))
    model.train()
    stamps = [time.perf_counter()]
    for tokens in batches:
        tokens = tokens.to(device.name)  # as Lightning moves each batch
        with device.autocast():
            logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        scheduler.step()
        device.sync()
        stamps.append(time.perf_counter())
    return stamps


def nlpkit_loop(task: CausalLMTask, batches: list[Tensor], device: Device) -> list[float]:
    """nlpkit: the Task's own training step, optimizer and schedule, driven by a Lightning Trainer."""
    mask = torch.ones_like(batches[0], dtype=torch.bool)
    data = [{"tokens": tokens, "mask": mask, "index": torch.arange(len(tokens))} for tokens in batches]
    return timed_steps(task, data, device, CLIP)


def training(args: argparse.Namespace, tokenizer: Tokenizer) -> float:
    """Emit train_tokens_per_s for the Transformer and the LSTM; return the Transformer's step time."""
    vocab, batch, length = tokenizer.vocab_size, args.batch_size, args.seq_len
    steps = args.warmup + args.chunk * args.repeats
    tokens_per_step = batch * length
    d, heads, layers = args.d_model, 4, args.layers
    cases = {
        "causal-transformer": (
            partial(
                CausalTransformerEncoder,
                d_model=d,
                num_heads=heads,
                num_layers=layers,
                dropout=0.0,
                max_length=length + 1,
                positions="learned",
                tie_weights=True,
            ),
            lambda: RefGPT(vocab, d, heads, layers, length + 1),
            {"d_model": d, "heads": heads, "layers": layers},
        ),
        "lstm": (
            partial(LSTMEncoder, embedding_dim=args.lstm_embedding, hidden_size=args.lstm_hidden, num_layers=2),
            lambda: RefLSTM(vocab, args.lstm_embedding, args.lstm_hidden, 2),
            {"embedding": args.lstm_embedding, "hidden": args.lstm_hidden, "layers": 2},
        ),
    }
    transformer_step = 0.0
    for name, (encoder, reference, shape) in cases.items():
        batches = token_batches(vocab, batch, length, steps)
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleave the two sides, so drifts of the machine hit both
            torch.manual_seed(0)
            task = CausalLMTask(
                encoder=encoder,
                learning_rate=LEARNING_RATE,
                weight_decay=WEIGHT_DECAY,
                metrics=[],
                compile=args.compile,
            )
            task.bind(tokenizer, None)
            ours += chunk_rates(nlpkit_loop(task, batches, args.device), args.warmup, args.chunk, tokens_per_step)
            torch.manual_seed(0)
            model = reference()
            if args.compile:
                model.compile()
            theirs += chunk_rates(plain_loop(model, batches, args.device), args.warmup, args.chunk, tokens_per_step)
        ours_rate, their_rate = statistics.median(ours), statistics.median(theirs)
        config = {
            "encoder": name,
            **shape,
            "batch": batch,
            "seq_len": length,
            "vocab": vocab,
            **args.device.config(),
            "compile": args.compile,
            "threads": torch.get_num_threads(),
        }
        emit("encoders", "train_tokens_per_s", "tokens/s", ours_rate, their_rate, "plain PyTorch loop", **config)
        if name == "causal-transformer":
            transformer_step = tokens_per_step / ours_rate
    return transformer_step


# -- model FLOPs utilization -----------------------------------------------------------------------------------
def matmul_peak_flops(size: int, dtype: torch.dtype, device: Device) -> float:
    """The device's peak dense matmul throughput (FLOP/s): the fastest of 5 medians of 5 square products each.

    A peak is the best the machine does, and one slow median (a busy neighbour) would inflate the MFU.
    """
    a, b = (torch.randn(size, size, dtype=dtype, device=device.name) for _ in range(2))
    fastest = min(median_seconds(lambda: a @ b, repeats=5, warmup=2, sync=device.sync) for _ in range(5))
    return 2 * size**3 / fastest


def mfu(args: argparse.Namespace, vocab: int, step_seconds: float) -> None:
    """Emit the Transformer training step's model FLOPs utilization (nanoGPT's 6N + 12LdT per token)."""
    d, layers, length = args.d_model, args.layers, args.seq_len
    params = vocab * d + (length + 1) * d + layers * (12 * d * d + 13 * d) + 2 * d
    flops_per_token = 6 * params + 12 * layers * d * length
    achieved = flops_per_token * args.batch_size * length / step_seconds
    dtype = AUTOCAST_DTYPES[args.device.precision] or torch.float32
    peak = matmul_peak_flops(args.peak_size, dtype, args.device)
    emit(
        "encoders",
        "mfu",
        "fraction",
        achieved / peak,
        encoder="causal-transformer",
        params=params,
        achieved_gflops=round(achieved / 1e9, 2),
        peak_gflops=round(peak / 1e9, 2),
        **args.device.config(),
    )


# -- generation ------------------------------------------------------------------------------------------------
def greedy_with_cache(model: CausalTransformerEncoder, prompt: Tensor, new_tokens: int) -> Tensor:
    """Prefill the prompt into a KV cache, then decode one token per step."""
    cache = model.init_cache(len(prompt), capacity=prompt.size(1) + new_tokens)
    ones = torch.ones(len(prompt), 1, dtype=torch.bool, device=prompt.device)
    logits = model.output_logits(model.step(prompt, torch.ones_like(prompt, dtype=torch.bool), cache)[:, -1:])
    out = [logits.argmax(-1)]
    for _ in range(new_tokens - 1):
        out.append(model.output_logits(model.step(out[-1], ones, cache)).argmax(-1))
    return torch.cat(out, dim=1)


def greedy_recompute(model: CausalTransformerEncoder, prompt: Tensor, new_tokens: int) -> Tensor:
    """The same model without a cache: the whole sequence again at every step."""
    sequence = prompt
    for _ in range(new_tokens):
        hidden = model(sequence, torch.ones_like(sequence, dtype=torch.bool))[:, -1:]
        sequence = torch.cat([sequence, model.output_logits(hidden).argmax(-1)], dim=1)
    return sequence[:, prompt.size(1) :]


def generation(args: argparse.Namespace, vocab: int) -> None:
    """Emit generate_tokens_per_s with and without the KV cache, per batch size."""
    torch.manual_seed(0)
    model = CausalTransformerEncoder(
        vocab,
        d_model=args.d_model,
        num_heads=4,
        num_layers=args.layers,
        dropout=0.0,
        max_length=args.prompt + args.new_tokens,
    ).eval()
    model.to(args.device.name)
    for batch in args.generate_batches:
        prompt = torch.randint(4, vocab, (batch, args.prompt), generator=torch.Generator().manual_seed(batch))
        prompt = prompt.to(args.device.name)
        rates = {}
        with torch.inference_mode(), args.device.autocast():
            cached = greedy_with_cache(model, prompt, args.new_tokens)
            assert torch.equal(cached, greedy_recompute(model, prompt, args.new_tokens)), "cache changed the output"
            for name, run in (("cache", greedy_with_cache), ("recompute", greedy_recompute)):
                seconds = median_seconds(
                    partial(run, model, prompt, args.new_tokens),
                    repeats=args.generate_repeats,
                    warmup=0,
                    sync=args.device.sync,
                )
                rates[name] = batch * args.new_tokens / seconds
        emit(
            "encoders",
            "generate_tokens_per_s",
            "tokens/s",
            rates["cache"],
            rates["recompute"],
            "same model without a cache (full recompute each step)",
            encoder="causal-transformer",
            batch=batch,
            prompt=args.prompt,
            new_tokens=args.new_tokens,
            vocab=vocab,
            threads=torch.get_num_threads(),
            **args.device.config(),
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Benchmark sizes: the issue's by default, seconds-long with ``--tiny``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run with toy sizes")
    Device.add_options(parser)
    parser.add_argument("--only", choices=["train", "generate"], default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides' models (training)")
    args = parser.parse_args(argv)
    sizes = dict(
        vocab=8000,
        batch_size=16,
        seq_len=128,
        d_model=256,
        layers=4,
        lstm_embedding=256,
        lstm_hidden=512,
        warmup=3,
        chunk=4,
        repeats=3,
        rounds=2,
        peak_size=2048,
        prompt=16,
        new_tokens=128,
        generate_batches=[1, 8],
        generate_repeats=3,
    )
    if args.tiny:
        sizes.update(
            vocab=300,
            batch_size=2,
            seq_len=16,
            d_model=32,
            layers=1,
            lstm_embedding=16,
            lstm_hidden=16,
            warmup=1,
            chunk=1,
            repeats=2,
            rounds=1,
            peak_size=64,
            prompt=4,
            new_tokens=4,
            generate_batches=[1],
            generate_repeats=1,
        )
    return argparse.Namespace(**vars(args) | {"device": Device.from_args(args)}, **sizes)


def main(argv: list[str] | None = None) -> None:
    """Run the figures."""
    args = parse(argv)
    tokenizer = synthetic_tokenizer(args.vocab)
    if args.only in (None, "train"):
        step_seconds = training(args, tokenizer)
        mfu(args, tokenizer.vocab_size, step_seconds)
    if args.only in (None, "generate"):
        generation(args, tokenizer.vocab_size)


if __name__ == "__main__":
    main()
