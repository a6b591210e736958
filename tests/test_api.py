"""The public surface of ``import nlpkit``."""

from __future__ import annotations

import nlpkit
import nlpkit.plugins
import nlpkit.registries


def test_every_public_name_resolves_with_a_docstring() -> None:
    for name in nlpkit.__all__:
        value = getattr(nlpkit, name)
        assert name == "__version__" or (value.__doc__ or "").strip(), name


def test_registry_function_is_not_shadowed_by_a_submodule() -> None:
    assert callable(nlpkit.registry)
    assert nlpkit.registry("encoders")["lstm"].__name__ == "LSTMEncoder"
