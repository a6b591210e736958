"""``nlpkit generate``: continue prompts with a trained checkpoint, every generation option on the command line."""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from dataclasses import fields
from typing import TYPE_CHECKING

from nlpkit import CheckpointCommand, ConfigError

if TYPE_CHECKING:
    from nlpkit_generation.task import GenerativeTask


def _option_type(annotation: object) -> tuple[type, dict[str, object]]:
    """argparse settings for a GenerationConfig field's annotation."""
    if typing.get_origin(annotation) is typing.Literal:
        return str, {"choices": list(typing.get_args(annotation))}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], {"action": "append"}
    return annotation, {}  # type: ignore[return-value]


class GenerateCommand(CheckpointCommand["GenerativeTask"]):
    """``nlpkit generate --ckpt_path lm.ckpt --prompt "Once upon" [--strategy sample --top_p 0.9 ...]``."""

    help = "continue prompts with a trained checkpoint (greedy, sampling, beam search, streaming)"

    task_type = "nlpkit_generation.task:GenerativeTask"
    refusal = "cannot generate"
    input_name = "prompt"
    checkpoint_help = "a checkpoint of a task that generates"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Output options, and one option per GenerationConfig field."""
        from nlpkit_generation.decoding import GenerationConfig  # torch: only when the command runs

        parser.add_argument("--stream", action="store_true", help="print each prompt's text as it is produced")
        parser.add_argument("--json", action="store_true", help="print one JSON object per prompt")
        hints = typing.get_type_hints(GenerationConfig)
        for field in fields(GenerationConfig):
            kind, extra = _option_type(hints[field.name])
            parser.add_argument(f"--{field.name}", type=kind, default=None, **extra)  # type: ignore[arg-type]

    def run(self, args: argparse.Namespace) -> int:
        """Refuse contradictory output options before loading anything, then generate."""
        if args.stream and args.json:
            raise ConfigError("--stream prints text as it comes; it cannot be combined with --json")
        return super().run(args)

    def run_on(self, task: GenerativeTask, prompts: list[str], args: argparse.Namespace) -> int:
        """Generate for every prompt."""
        from nlpkit_generation.decoding import GenerationConfig

        echo = task.continues_input  # a language model's output continues the prompt; a translation does not
        options = {f.name: getattr(args, f.name) for f in fields(GenerationConfig) if getattr(args, f.name) is not None}
        if args.stream:
            for prompt in prompts:
                sys.stdout.write(prompt if echo else "")
                for piece in task.stream(prompt, **options):
                    sys.stdout.write(piece)
                    sys.stdout.flush()
                sys.stdout.write("\n")
            return 0
        for prompt, generation in zip(prompts, task.generate(prompts, **options), strict=True):
            if args.json:
                print(json.dumps({"prompt": prompt, **generation.to_dict()}))
            else:
                print((prompt if echo else "") + generation.text)
        return 0
