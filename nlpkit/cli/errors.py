"""A mistake on the command line or in a config, said in one line: the file and line, and what was expected.

jsonargparse reports a YAML syntax error without the file it read, and a misspelled key without where it is or
what was meant; these functions find both from the error's chain and the ``--config`` files of the command.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from nlpkit.plugin.configurable import named_class

#: how jsonargparse words a key no class accepts: ``Option 'hiden_size' is not accepted`` (inside a class's
#: arguments) and ``Subcommand 'fit' does not accept option 'trainer.max_epoch'`` (a top-level section)
UNKNOWN_KEY = re.compile(r"Option '([^']+)' is not accepted|does not accept option '([^']+)'")
#: the class whose arguments were being read, as jsonargparse prints the value it was given (``class_path='X'``,
#: ``'class_path': 'X'``) or names it (``given class_path 'X'``)
CLASS_PATH = re.compile(r"class_path'?(?:=|:\s*|\s)'([\w.]+)'")


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it was raised from or while handling, down to the first cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def config_files(argv: list[str]) -> list[Path]:
    """The files given to ``--config`` (``--config FILE`` or ``--config=FILE``), in order."""
    given = [value for option, value in itertools.pairwise(argv) if option == "--config"]
    given += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    return [Path(path) for path in given if Path(path).is_file()]


#: argparse's words for options nothing declares: ``unrecognized arguments: --trainr.max_epochs 3``
UNRECOGNIZED = re.compile(r"unrecognized arguments: --([\w.]+)")
#: the top-level keys of ``nlpkit fit``, for suggesting one when an option starts with none of them
TOP_LEVEL = ("trainer", "model", "data", "checkpoint", "early_stopping", "predictions", "seed_everything",
             "ckpt_path", "config", "optimizer", "lr_scheduler")  # fmt: skip


def explain(error: BaseException, argv: list[str]) -> str:
    """One line for a jsonargparse or Lightning configuration error of the command ``argv``."""
    causes = list(chain(error))
    syntax = next((cause for cause in causes if isinstance(cause, yaml.MarkedYAMLError)), None)
    if syntax is not None:
        return _yaml_syntax(syntax, config_files(argv))
    for cause in causes:
        unknown = UNKNOWN_KEY.search(str(cause))
        if unknown:  # group 2: a key of the whole command (trainer.max_epoch), group 1: one inside a class
            return _unknown_key(unknown[1] or unknown[2], causes, argv, top_level=bool(unknown[2]))
    unrecognized = UNRECOGNIZED.search(str(error))
    if unrecognized:
        return _unknown_key(unrecognized[1], causes, argv, top_level=True)
    return _innermost(error, causes[-1])


def _yaml_syntax(error: yaml.MarkedYAMLError, files: list[Path]) -> str:
    """``FILE:LINE:COLUMN: not valid YAML: ...``, the file found by reading each config again."""
    for path in files:
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as own:
            error, where = own, f"{path}:"
            break
    else:
        where = "--config: "
    mark = error.problem_mark
    position = f"{mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
    context = (
        f" ({error.context} at line {error.context_mark.line + 1})" if error.context and error.context_mark else ""
    )
    return f"{where}{position}not valid YAML: {error.problem}{context}"


def _unknown_key(key: str, causes: list[BaseException], argv: list[str], top_level: bool) -> str:
    """``FILE:LINE: unknown option 'KEY' of CLASS; did you mean 'CLOSEST'?`` (or ``--OPTION: ...`` when the key
    was given on the command line); ``top_level``: the key is one of the whole command's (``trainer.max_epoch``)."""
    section, _, name = key.rpartition(".")
    owner = _owner(section, causes)
    accepted, of, meant = [], "", None
    if owner is not None:
        accepted, of = _parameters(owner), f" of {owner.__name__}"
        close = difflib.get_close_matches(name, accepted, n=1)
        meant = f"{section}.{close[0]}" if close and section else close[0] if close else None
    elif top_level:  # a section that is none (--trainr.max_epochs)
        head, _, rest = key.partition(".")
        accepted = list(TOP_LEVEL)
        close = difflib.get_close_matches(head, accepted, n=1)
        meant = ".".join([close[0], rest] if rest else close) if close else None
    hint = f"; did you mean '{meant}'?" if meant else f" (expected one of: {', '.join(accepted)})" if accepted else ""
    written = re.compile(rf"--(\S+\.)?{re.escape(name)}(=.*)?")
    given = next((arg.split("=", 1)[0] for arg in argv if written.fullmatch(arg)), None)
    where = f"{given}: " if given else _where(name, config_files(argv))
    return f"{where}unknown option '{key}'{of}{hint}"


def _owner(section: str, causes: list[BaseException]) -> type | None:
    """The class whose arguments hold the unknown key: a top-level section's (``trainer``), else the innermost class
    jsonargparse names in the error's chain."""
    sections = _sections()
    if section in sections:
        return sections[section]
    for cause in reversed(causes):
        found = CLASS_PATH.search(str(cause))
        if found and isinstance(named_class(found[1]), type):
            return named_class(found[1])
    return None


def _sections() -> dict[str, type]:
    """The classes behind the top-level sections of ``nlpkit fit`` (imported only when a key there is wrong)."""
    from pytorch_lightning import Trainer
    from pytorch_lightning.callbacks import EarlyStopping

    from nlpkit.training.callbacks import Checkpoint, PredictionWriter

    return {"trainer": Trainer, "checkpoint": Checkpoint, "early_stopping": EarlyStopping,
            "predictions": PredictionWriter}  # fmt: skip


def _parameters(cls: type) -> list[str]:
    """The keyword arguments ``cls`` takes, without the ones its owner injects: its own, and its bases' while each
    ``__init__`` passes ``**kwargs`` on (a task's ``learning_rate`` is the base Task's)."""
    injected = set(getattr(cls, "injected_args", ()))
    names: list[str] = []
    for base in cls.__mro__:
        if "__init__" not in vars(base):
            continue
        parameters = inspect.signature(base.__init__).parameters.values()  # type: ignore[misc]
        names += [p.name for p in parameters if p.name not in ("self", *injected, *names)
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]  # fmt: skip
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


def _where(name: str, files: list[Path]) -> str:
    """``FILE:LINE: `` of the first line of the config files that writes the key ``name``, or ``""``."""
    written = re.compile(rf"(^|[\s{{,]){re.escape(name)}\s*:")
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if written.search(line.split("#", 1)[0]):
                return f"{path}:{number}: "
    return ""


def _innermost(error: BaseException, root: BaseException) -> str:
    """The key jsonargparse was parsing and the innermost cause, on one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = next((line.strip() for line in str(root).splitlines() if line.strip()), "")
    head = lines[0].rstrip(":") if lines else type(error).__name__
    if root is error or not cause or cause.rstrip(":") in head:
        return head
    return f"{head.replace('Parser key ', 'in ')}: {cause}"
