"""``nlpkit export`` and ``nlpkit serve``: a trained model out of Python, and behind HTTP.

The commands import torch, ONNX and the web server only when run, so ``nlpkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields

from nlpkit.cli.commands import Command
from nlpkit.deploy.limits import ServerLimits
from nlpkit.plugin.errors import ConfigError


def _require(module: str, extra: str) -> None:
    """A ConfigError naming the extra to install when ``module`` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"this command needs {module}: pip install 'nlpkit[{extra}]'")


class ExportCommand(Command):
    """``nlpkit export CKPT --format onnx --out DIR [--quantize dynamic]``."""

    help = "export a trained model to ONNX or TorchScript (with its tokenizer and labels), optionally int8"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The checkpoint (or run directory), the format, the output directory and quantization."""
        parser.add_argument("checkpoint", help="a checkpoint file, or a run directory (its best checkpoint)")
        parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
        parser.add_argument("--out", required=True, help="the export directory (replaced if it holds an export)")
        parser.add_argument(
            "--quantize", choices=["none", "dynamic"], default="none", help="dynamic: int8 weights (Linear, RNNs)"
        )

    def run(self, args: argparse.Namespace) -> int:
        """Load, export, check the export against the model, print a summary line."""
        if args.format == "onnx":
            _require("onnxruntime", "export")
        from nlpkit.deploy.export import export
        from nlpkit.deploy.loading import load

        report = export(load(args.checkpoint), args.out, args.format, quantize=args.quantize == "dynamic")
        print(report.summary())
        return 0


class ServeCommand(Command):
    """``nlpkit serve MODEL --port 8080``: /predict, /generate, /embed, /health, /metadata."""

    help = "serve a checkpoint or an export over HTTP (micro-batched /predict, streamed /generate, /embed)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The model, the address and the batching and request limits."""
        parser.add_argument("model", help="a checkpoint, a run directory, or an export directory")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8080)
        for name, value in asdict(ServerLimits()).items():
            parser.add_argument(f"--{name}", type=type(value), default=value)

    def run(self, args: argparse.Namespace) -> int:
        """Serve until SIGINT or SIGTERM (requests in flight finish first)."""
        _require("fastapi", "serve")
        _require("uvicorn", "serve")
        from nlpkit.deploy.serving import serve

        limits = ServerLimits(**{field.name: getattr(args, field.name) for field in fields(ServerLimits)})
        serve(args.model, args.host, args.port, limits)
        return 0
