"""The README's five-minute tour runs as written: every console command and Python snippet of it, in order, in a
fresh directory holding a copy of ``examples/``, and what each prints has the shape the README shows (figures may
differ; keys and nesting may not). The README is this test's input, so the two cannot drift apart.

Two things are added to what the README says: every ``nlpkit fit`` trains for a budget of a few steps (the tour's
figures come from full runs), and each ``nlpkit serve`` gets a free port (the same one its ``curl`` lines use).
``make`` lines set the machine up and are what ``make test`` runs before this test, so they are not run again.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from markdown_it import MarkdownIt

from nlpkit.cli.main import main
from nlpkit.plugin.loader import reset_plugins
from nlpkit.testing import require_cached

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOUR = README.split("\n## A five-minute tour\n", 1)[1].split("\n## ", 1)[0]
#: what every fit of the tour adds: a few steps, a couple of validation batches, no progress bar
BUDGET = ["--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]
#: where ``make pretrained`` puts the sentence-transformers folder the tour embeds with
MINILM = Path("~/.cache/nlpkit/corpora/pretrained/all-MiniLM-L6-v2").expanduser()
MORE = "\u2026"  # what a README sample's "..." becomes: more keys or items than it shows


@dataclass
class Step:
    """One command of a console block (continuation lines joined) and the lines the README shows it printing."""

    command: str
    shown: list[str] = field(default_factory=list)


def tour_blocks() -> list[tuple[str, str]]:
    """The tour's fenced blocks that run, in order: ``("console", text)`` and ``("python", text)``."""
    tokens = MarkdownIt("commonmark").parse(TOUR)
    return [(token.info.strip(), token.content) for token in tokens
            if token.type == "fence" and token.info.strip() in ("console", "python")]  # fmt: skip


def console_steps(text: str) -> list[Step]:
    """The ``$ `` commands of a console block, each with the output lines shown under it."""
    steps: list[Step] = []
    pending = ""
    for line in text.splitlines():
        if pending or line.startswith("$ "):
            pending += line.removeprefix("$ ").strip() if not pending else " " + line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            steps.append(Step(pending))
            pending = ""
        elif steps and line.strip() and line.strip() != "...":
            steps[-1].shown.append(line)
    return steps


def sample(text: str) -> Any:
    """A README sample line (JSON, or a Python literal) as data, its ``...`` standing for more."""
    text = re.sub(r",\s*\.\.\.\s*}", f', "{MORE}": 0}}', text.replace("{...}", f'{{"{MORE}": 0}}'))
    text = re.sub(r",\s*\.\.\.\s*]", f', "{MORE}"]', text.replace("[...]", f'["{MORE}"]'))
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def same_shape(shown: Any, actual: Any, where: str = "") -> None:
    """Assert ``actual`` has the keys, nesting and kinds of values of the README's ``shown``."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: a mapping in the README, {actual!r} printed"
        keys = set(shown) - {MORE}
        assert keys <= set(actual) if MORE in shown else keys == set(actual), f"{where}: keys {sorted(actual)}"
        for key in keys:
            same_shape(shown[key], actual[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list | tuple), f"{where}: a list in the README, {actual!r} printed"
        if shown and shown[0] != MORE:
            for item in actual:
                same_shape(shown[0], item, f"{where}[]")
    elif isinstance(shown, bool) or shown is None:
        assert actual is shown or type(actual) is type(shown), f"{where}: {shown!r} in the README, {actual!r} printed"
    elif isinstance(shown, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{where}: {actual!r} is no number"
    else:
        assert isinstance(actual, str), f"{where}: text in the README, {actual!r} printed"


def check_printed(step: Step, status: int, out: str, err: str) -> None:
    """What a step printed against what the README shows under it."""
    errors = [line for line in step.shown if line.startswith("nlpkit: error: ")]
    assert status == (2 if errors else 0), f"$ {step.command}: exit status {status}\n{err[-3000:]}"
    if errors:
        assert err.strip().splitlines() == errors, f"$ {step.command}"
        return
    printed = [line for line in out.splitlines() if line.strip()]
    for shown in step.shown:
        if shown.startswith(("{", "[")):
            data = [line for line in printed if line.startswith(shown[0])]
            assert data, f"$ {step.command}: the README shows {shown}, nothing like it was printed:\n{out[-2000:]}"
            same_shape(sample(shown), sample(data[0]), step.command)
        else:  # text: a generation continues its prompt
            assert printed and printed[0].split()[0] == shown.split()[0], f"$ {step.command}: printed {printed[:3]}"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Tour:
    """Runs the steps in ``directory``: ``nlpkit`` and ``python -c`` in this process (``main`` is what the console
    script calls), ``nlpkit serve`` as a server process, everything else through bash."""

    def __init__(self, directory: Path, capsys: pytest.CaptureFixture) -> None:
        self.directory, self.capsys = directory, capsys
        self.ports: dict[str, str] = {}
        self.servers: list[subprocess.Popen] = []
        self.namespace: dict[str, Any] = {}

    def console(self, step: Step) -> None:
        """Run one console step and check what it printed."""
        command = step.command
        for shown, port in self.ports.items():
            command = command.replace(f"localhost:{shown}", f"localhost:{port}")
        words = shlex.split(command, comments=True)
        if words[0] == "make":
            return
        if words[:2] == ["nlpkit", "serve"]:
            return self.serve(words[2:])
        if words[:2] == ["python", "-c"]:  # in this interpreter, as fast as the nlpkit commands (no new process)
            self.capsys.readouterr()
            exec(words[2], {})
            out, err = self.capsys.readouterr()
            return check_printed(step, 0, out, err)
        if words[0] != "nlpkit":
            # as in a shell with nlpkit's environment active: its python and nlpkit first on the PATH
            path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
            result = subprocess.run(["bash", "-c", command], cwd=self.directory, capture_output=True, text=True,
                                    timeout=300, env={**os.environ, "PATH": path})  # fmt: skip
            return check_printed(step, result.returncode, result.stdout, result.stderr)
        args = [os.path.expanduser(word) for word in words[1:]]
        if args[0] == "fit" and "--print_config" not in args:
            args += BUDGET
        self.capsys.readouterr()
        try:
            status = main(args)
        except SystemExit as exit_info:  # --print_config prints, then LightningCLI exits
            status = exit_info.code or 0
        out, err = self.capsys.readouterr()
        check_printed(step, status, out, err)

    def serve(self, args: list[str]) -> None:
        """Start ``nlpkit serve`` on a free port and wait until it answers."""
        port = str(free_port())
        self.ports[args[args.index("--port") + 1]] = port
        args[args.index("--port") + 1] = port
        log = (self.directory / f"serve-{port}.log").open("w")
        self.servers.append(subprocess.Popen([sys.executable, "-m", "nlpkit", "serve", *args], cwd=self.directory,
                                             stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.servers[-1].poll() is None, (self.directory / f"serve-{port}.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.5)
        raise AssertionError(f"nlpkit serve {' '.join(args)} did not answer within 180 s")

    def python(self, text: str) -> None:
        """Run a Python block statement by statement; a statement followed by a ``# [...]`` or ``# {...}`` comment
        must evaluate to data of that shape."""
        lines = text.splitlines()
        for statement in ast.parse(text).body:
            source = ast.get_source_segment(text, statement)
            following = lines[statement.end_lineno] if statement.end_lineno < len(lines) else ""
            if isinstance(statement, ast.Expr):
                value = eval(source, self.namespace)
                if following.startswith(("# [", "# {")):
                    same_shape(sample(following[2:]), value, source)
            else:
                exec(source, self.namespace)

    def stop(self) -> None:
        """Stop the servers as Ctrl-C does."""
        for server in self.servers:
            server.send_signal(signal.SIGINT)
        for server in self.servers:
            server.wait(timeout=60)


def test_the_tour_parses_into_steps() -> None:
    """The parser sees what a reader sees (a test of the test: it cannot pass on an empty tour)."""
    kinds = [kind for kind, _ in tour_blocks()]
    assert kinds.count("python") == 2 and kinds.count("console") >= 8
    steps = [step for kind, text in tour_blocks() if kind == "console" for step in console_steps(text)]
    assert steps[0].command.startswith("nlpkit fit --config examples/sentiment.yaml")
    assert any("--model.encoder transformer" in step.command and "default_root_dir" in step.command for step in steps)
    assert same_shape(sample("{'a': [1, ...], 'b': {...}}"), {"a": [2, 3], "b": {"c": 1}}) is None
    with pytest.raises(AssertionError):
        same_shape(sample('{"label": "pos", "probabilities": {"neg": 0.1}}'), {"label": "pos"})


def test_every_step_of_the_tour_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    require_cached(MINILM, "make pretrained")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    reset_plugins()
    tour = Tour(tmp_path, capsys)
    try:
        for kind, text in tour_blocks():
            if kind == "python":
                tour.python(text)
            else:
                for step in console_steps(text):
                    tour.console(step)
    finally:
        tour.stop()
