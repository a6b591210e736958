"""The public surface of ``import nlpkit``."""

from __future__ import annotations

import typing
from pathlib import Path

import nlpkit
import nlpkit.plugin.loader
import nlpkit.plugin.registries


def test_every_public_name_resolves_and_is_documented() -> None:
    reference = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    for name in nlpkit.__all__:
        value = getattr(nlpkit, name)
        if name == "__version__":
            continue
        assert f"nlpkit.{name}" in reference, f"{name} is published but not in docs/api.md"
        if typing.get_origin(value) is None:  # a type alias is described in the reference's table instead
            assert (value.__doc__ or "").strip(), name


def test_registry_function_is_not_shadowed_by_a_submodule() -> None:
    assert callable(nlpkit.registry)
    assert nlpkit.registry("encoders")["lstm"].__name__ == "LSTMEncoder"
