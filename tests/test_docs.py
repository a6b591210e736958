"""The docs stay true: the hook reference is generated from the hookspecs, and the README keeps its promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_hook_reference_is_generated_from_the_hookspecs() -> None:
    spec = importlib.util.spec_from_file_location("generate_hooks", ROOT / "docs" / "generate_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8") == module.render(), (
        "docs/hooks.md is stale: run `python docs/generate_hooks.py`"
    )


def test_readme_shows_the_two_commands_and_links_the_plugin_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert "docs/plugins.md" in readme and (ROOT / "docs" / "plugins.md").is_file()
