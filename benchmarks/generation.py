"""Generation speed: nlpkit's ``generate()`` on a causal-lm task against Hugging Face ``GPT2LMHeadModel.generate``
with the same dimensions (random initialisation, nothing downloaded), greedy and 4-beam, in the same process.

Both produce exactly ``new_tokens`` tokens per sequence (end-of-sequence is blocked until then), from the same
random prompts, with the same threads; each figure is the median of repetitions after a warm-up, the two
timed in turns so that the machine's drift falls on both.
``--tiny`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Device, emit, interleaved_medians, synthetic_tokenizer
from nlpkit_generation.decoding import GenerationConfig, generate
from nlpkit_generation.task import CausalLMTask

from nlpkit.models.encoders.transformer import CausalTransformerEncoder


def main(argv: list[str] | None = None) -> None:
    """Print greedy and beam figures for each batch size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run with toy sizes")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    from transformers import GPT2Config, GPT2LMHeadModel

    vocab, d, heads, layers, prompt_length, new_tokens, batches, repeats = (
        (300, 32, 2, 1, 4, 4, [1], 1) if args.tiny else (8000, 256, 4, 4, 16, 128, [1, 8, 32], 5)
    )
    tokenizer = synthetic_tokenizer(vocab)
    vocab = tokenizer.vocab_size
    length = prompt_length + new_tokens
    torch.manual_seed(0)
    task = CausalLMTask(
        encoder=partial(CausalTransformerEncoder, d_model=d, num_heads=heads, num_layers=layers, dropout=0.0,
                        max_length=length)
    )  # fmt: skip
    task.bind(tokenizer, None)
    task.eval().to(device.name)
    reference = GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab, n_positions=length, n_embd=d, n_layer=layers, n_head=heads, resid_pdrop=0.0,
                   embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                   pad_token_id=tokenizer.pad_id, attn_implementation="sdpa")
    ).eval().to(device.name)  # fmt: skip
    for method, beams in (("greedy", 1), ("beam", 4)):
        for batch in batches:
            prompts = torch.randint(4, vocab, (batch, prompt_length), generator=torch.Generator().manual_seed(batch))
            prompts = prompts.to(device.name)
            options = {"strategy": "beam", "num_beams": beams} if beams > 1 else {}
            config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, **options)

            def ours(prompts: torch.Tensor = prompts, config: GenerationConfig = config) -> None:
                with task.evaluating():  # what Task.generate runs in: eval mode and a packed-inference span
                    generate(task, prompts.tolist(), config, tokenizer)

            def theirs(prompts: torch.Tensor = prompts, beams: int = beams) -> None:
                with torch.inference_mode():
                    reference.generate(
                        prompts,
                        attention_mask=torch.ones_like(prompts),
                        max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens,
                        do_sample=False,
                        num_beams=beams,
                    )

            with device.autocast():
                ours_time, their_time = interleaved_medians([ours, theirs], repeats, sync=device.sync)
            tokens = batch * new_tokens
            emit("generation", "generate_tokens_per_s", "tokens/s", tokens / ours_time, tokens / their_time,
                 "transformers GPT2LMHeadModel.generate (sdpa)", method=method, beams=beams, batch=batch,
                 prompt=prompt_length, new_tokens=new_tokens, d_model=d, layers=layers, vocab=vocab,
                 threads=torch.get_num_threads(), **device.config())  # fmt: skip


if __name__ == "__main__":
    main()
