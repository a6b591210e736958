"""The docs stay true: the hook reference is generated from the hookspecs, and the README keeps its promises.

`make docs` builds the site with `mkdocs build --strict` (broken links, anchors and docstrings fail it); these
tests check what needs no mkdocs: the generated pages are current and complete, and every page is in the nav.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

import nlpkit
from nlpkit.plugin import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_hooks", DOCS / "generate_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_reference_is_generated_from_the_hookspecs() -> None:
    assert (DOCS / "hooks.md").read_text(encoding="utf-8") == _generator().render(), (
        "docs/hooks.md is stale: run `python docs/generate_hooks.py`"
    )


def test_the_hook_contract_names_only_published_classes() -> None:
    """A plugin author reads the contract: every class it points to is importable from ``nlpkit`` itself."""
    text = inspect.getsource(hookspecs)
    names = re.findall(r":class:`~?([\w.]+)`", text)
    assert names, "the contract cross-references its classes"
    for name in names:
        assert name.startswith("nlpkit.") and name.count(".") == 1, f"{name} is not a published name"
        assert hasattr(nlpkit, name.split(".")[1]), name


def test_every_hook_has_a_versioned_section() -> None:
    reference = (DOCS / "hooks.md").read_text(encoding="utf-8")
    hooks = _generator().hooks()
    declared = [name for name in vars(hookspecs) if name.startswith("register_")]
    assert [name for name, _ in hooks] == declared and declared
    for name, function in hooks:
        assert f"\n## `{name}`\n" in reference
        assert re.search(r"^\*Since \d+\.\d+\.\*$", inspect.getdoc(function), re.MULTILINE), (
            f"{name}: the docstring must end with the version that introduced the hook: *Since X.Y.*"
        )


def test_generated_reference_is_markdown_not_sphinx() -> None:
    generator = _generator()
    text = generator.markdown(
        "Takes a :class:`~nlpkit.Task`.\n\n:param register: call it\n    with two arguments.\n:param x: y\n\nEnd."
    )
    assert text == (
        "Takes a `nlpkit.Task`.\n\n**Parameters**\n\n- `register`: call it\n  with two arguments.\n- `x`: y\n\nEnd."
    )
    assert generator.on_page_content("see :meth:<code>bind</code> and :class:<code>~X</code>") == (
        "see <code>bind</code> and <code>X</code>"
    )


def _nav_pages(items: list) -> list[str]:
    pages = []
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_page_is_in_the_site_nav_and_every_example_config_in_the_docs() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True
    assert sorted(_nav_pages(config["nav"])) == sorted(path.name for path in DOCS.glob("*.md"))
    configs = (DOCS / "configs.md").read_text(encoding="utf-8")
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        assert f'--8<-- "examples/{example.name}"' in configs, f"docs/configs.md does not include {example.name}"


def test_readme_shows_the_two_commands_and_links_the_plugin_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert "docs/plugins.md" in readme and (ROOT / "docs" / "plugins.md").is_file()


MARKDOWN = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *ROOT.glob("plugins/*/README.md")])


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_code_fence_closes(page: Path) -> None:
    """As a CommonMark renderer reads the page (markdown-it-py): a fence left open would swallow the rest of the
    page into its code block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for token in MarkdownIt("commonmark").parse("\n".join(lines)):
        if token.type != "fence":
            continue
        start, end = token.map
        closing = lines[end - 1].strip() if end - 1 > start else ""
        assert closing.startswith(token.markup) and not closing.strip(token.markup[0]), (
            f"{page.relative_to(ROOT)}:{start + 1}: this {token.markup} fence never closes"
        )
