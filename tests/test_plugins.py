"""Plugin discovery through real entry points: loading, failures, conflicts, allow and deny lists."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import nlpkit
from nlpkit.cli.main import main
from nlpkit.plugin.errors import NameConflictError, PluginError, UnknownNameError
from nlpkit.plugin.loader import PluginWarning, discover, get_plugins

FIRST_PARTY = {"classification", "generation", "ner", "multilingual", "kg"}


def test_core_and_first_party_plugins_load_through_entry_points() -> None:
    plugins = discover()
    assert {"core", *FIRST_PARTY} <= set(plugins.info)
    for name in {"core", *FIRST_PARTY}:
        assert plugins.info[name].status == "loaded", plugins.info[name].error
    assert plugins.info["core"].distribution == "nlpkit"
    assert set(plugins["encoders"]) >= {"rnn", "lstm", "gru", "transformer", "causal-transformer"}
    assert plugins["tasks"].entry("text-classification").plugin == "classification"


def test_third_party_plugin_is_discovered_with_its_names(plugin_site) -> None:
    plugin_site("nlpkit-toy", "toy", "nlpkit_toy")
    plugins = discover()
    info = plugins.info["toy"]
    assert (info.status, info.distribution, info.version) == ("loaded", "nlpkit-toy", "0.1.0")
    assert info.registered == {"heads": ["scaled-linear"], "metrics": ["error-rate"]}
    assert plugins["heads"].entry("scaled-linear").plugin == "toy"


def test_import_failure_is_named_and_the_others_keep_working(plugin_site) -> None:
    plugin_site("nlpkit-broken", "broken", "nlpkit_broken", source="import not_a_module_anywhere\n")
    with pytest.warns(PluginWarning, match=r"'broken' \(nlpkit_broken\) failed to load: import failed"):
        plugins = discover()
    assert plugins.info["broken"].status == "failed"
    assert "No module named 'not_a_module_anywhere'" in plugins.info["broken"].error
    assert plugins.info["classification"].status == "loaded"
    with pytest.raises(UnknownNameError, match=r"Plugins that failed to load and may provide it: 'broken'"):
        plugins["heads"]["what-broken-would-have-had"]


def test_a_hook_that_raises_leaves_no_partial_registration(plugin_site) -> None:
    source = """
        from nlpkit import hookimpl
        from nlpkit.models.heads import LinearHead

        @hookimpl
        def register_heads(register):
            register("half-registered", LinearHead)
            raise RuntimeError("database unavailable")
    """
    plugin_site("nlpkit-flaky", "flaky", "nlpkit_flaky", source=source)
    with pytest.warns(PluginWarning, match="RuntimeError in its hook: database unavailable"):
        plugins = discover()
    assert plugins.info["flaky"].status == "failed"
    assert "half-registered" not in plugins["heads"]
    assert "linear" in plugins["heads"]


def test_two_plugins_with_one_name_is_an_error_naming_both(plugin_site) -> None:
    source = """
        from nlpkit import hookimpl
        from nlpkit.models.heads import MLPHead

        @hookimpl
        def register_heads(register):
            register("linear", MLPHead)
            register("clash-free", MLPHead)
    """
    plugin_site("nlpkit-clash", "clash", "nlpkit_clash", source=source)
    plugins = discover()
    assert plugins["heads"].conflicts == {"linear": ["core", "clash"]}
    with pytest.raises(NameConflictError, match=r"head 'linear' is registered by plugins 'core' and 'clash'"):
        plugins["heads"]["linear"]
    assert plugins["heads"]["clash-free"].__name__ == "MLPHead"


def test_misspelled_hook_name_is_caught_at_load_time(plugin_site) -> None:
    source = """
        from nlpkit import hookimpl

        @hookimpl
        def register_encoder(register):
            pass
    """
    plugin_site("nlpkit-typo", "typo", "nlpkit_typo", source=source)
    with pytest.warns(PluginWarning):
        plugins = discover()
    assert plugins.info["typo"].status == "failed"
    assert "unknown hook 'register_encoder' (did you mean 'register_encoders'?)" in plugins.info["typo"].error


def test_hook_with_wrong_arguments_is_rejected_by_pluggy(plugin_site) -> None:
    source = """
        from nlpkit import hookimpl

        @hookimpl
        def register_heads(register, extra):
            pass
    """
    plugin_site("nlpkit-badargs", "badargs", "nlpkit_badargs", source=source)
    with pytest.warns(PluginWarning):
        plugins = discover()
    assert plugins.info["badargs"].status == "failed"
    assert "invalid plugin" in plugins.info["badargs"].error


def test_unknown_name_lists_names_and_the_closest_match() -> None:
    with pytest.raises(UnknownNameError) as error:
        get_plugins()["encoders"]["lsmt"]
    message = str(error.value)
    assert "unknown encoder 'lsmt'; did you mean 'lstm'?" in message
    assert "causal-transformer, cnn, concat, gru, lstm, ngram, pretrained, rnn, transformer" in message


def test_allowlist_and_denylist(plugin_site, monkeypatch) -> None:
    plugin_site("nlpkit-toy", "toy", "nlpkit_toy")
    monkeypatch.setenv("NLPKIT_PLUGINS", "toy")
    plugins = discover()
    assert {name for name, info in plugins.info.items() if info.status == "loaded"} == {"core", "toy"}
    assert plugins.info["classification"].status == "disabled"
    monkeypatch.delenv("NLPKIT_PLUGINS")
    monkeypatch.setenv("NLPKIT_DISABLE_PLUGINS", "toy, classification")
    plugins = discover()
    assert plugins.info["toy"].status == plugins.info["classification"].status == "disabled"
    assert plugins.info["ner"].status == "loaded"


def test_registries_are_read_only_after_loading() -> None:
    from nlpkit.models.heads import LinearHead
    from nlpkit.plugin.registries import Entry

    with pytest.raises(RuntimeError, match="read-only"):
        get_plugins()["heads"].add(Entry("late", LinearHead, "me"))


def test_plugins_command_lists_every_plugin_as_json(plugin_site, capsys) -> None:
    plugin_site("nlpkit-toy", "toy", "nlpkit_toy")
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"core", "toy", *FIRST_PARTY} <= set(rows)
    assert rows["toy"]["registered"] == {"heads": ["scaled-linear"], "metrics": ["error-rate"]}
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out  # not a terminal, as in `nlpkit plugins > plugins.txt`: nothing cut at 80 columns
    assert "nlpkit-classification" in table and "scaled-linear" in table and "…" not in table


def _hook_names() -> set[str]:
    from nlpkit.plugin import hookspecs

    return {name for name, value in vars(hookspecs).items() if hasattr(value, "nlpkit_spec")}


def test_a_registry_prints_what_it_holds() -> None:
    """As python-api.md shows it: the short names and what each names, not ``<Registry object at 0x...>``."""
    text = repr(nlpkit.registry("encoders"))
    assert text.startswith("Registry('encoders', {'rnn': ElmanRNNEncoder, 'lstm': LSTMEncoder, ")
    assert text.endswith("})")


def test_every_hook_has_a_registry() -> None:
    from nlpkit.plugin.registries import KINDS

    assert _hook_names() == {f"register_{kind}" for kind in KINDS}


VALID = {  # for each hook, a registration of the kind it promises
    "register_encoders": ("from nlpkit.models.encoders.rnn import LSTMEncoder as Base", "class Thing(Base): pass"),
    "register_heads": ("from nlpkit.models.heads import LinearHead as Base", "class Thing(Base): pass"),
    "register_metrics": ("from torchmetrics.classification import MulticlassAccuracy as Base", "Thing = Base"),
    "register_datasets": ("from nlpkit import TextDataModule as Base", "class Thing(Base): pass"),
    "register_tasks": ("from nlpkit import Task as Base", "class Thing(Base): pass"),
    "register_commands": (
        "from nlpkit import Command as Base",
        "class Thing(Base): pass\nThing = Thing()",
    ),
    "register_word_features": ("", "def Thing(word):\n    return [word[::-1]]"),
}


def registering(hook: str) -> str:
    """Plugin source implementing ``hook`` by registering ``Thing`` as 'thing'."""
    return f"from nlpkit import hookimpl\n\n@hookimpl\ndef {hook}(register):\n    register('thing', Thing)\n"


def test_every_hook_has_a_valid_registration_case() -> None:
    assert set(VALID) == _hook_names()


@pytest.mark.parametrize("hook", sorted(_hook_names()))
def test_every_hook_registers_through_an_installed_plugin(hook, plugin_site) -> None:
    imports, definition = VALID[hook]
    source = f"{imports}\n{definition}\n{registering(hook)}"
    plugin_site("nlpkit-every", "every", "nlpkit_every", source=source)
    kind = hook.removeprefix("register_")
    plugins = discover()
    assert plugins.info["every"].status == "loaded", plugins.info["every"].error
    entry = plugins[kind].entry("thing")
    assert entry.plugin == "every" and entry.obj is sys.modules["nlpkit_every"].Thing


@pytest.mark.parametrize(
    ("hook", "definition", "message"),
    [
        ("register_encoders", "Thing = dict", "encoder 'thing' must be a subclass of nlpkit.Encoder"),
        ("register_commands", "class Thing: help = 'x'", "command 'thing' must be an nlpkit.Command instance"),
        ("register_metrics", "Thing = 3", "metric 'thing' must be a callable"),
        ("register_word_features", "Thing = 3", "word feature 'thing' must be a callable from a word"),
        ("register_heads", "Thing = 'not a reference'", "head 'thing' must be an object or a 'module:attr' reference"),
    ],
)
def test_a_registration_of_the_wrong_kind_fails_its_plugin(hook, definition, message, plugin_site) -> None:
    source = (
        f"from nlpkit import hookimpl\n{definition}\n\n@hookimpl\ndef {hook}(register):\n    register('thing', Thing)\n"
    )
    plugin_site("nlpkit-wrong", "wrong", "nlpkit_wrong", source=source)
    with pytest.warns(PluginWarning, match=message):
        plugins = discover()
    assert plugins.info["wrong"].status == "failed" and "thing" not in plugins[hook.removeprefix("register_")]


LAZY_PLUGIN = """
    from nlpkit import hookimpl

    @hookimpl
    def register_heads(register):
        register("gated", "nlpkit_lazy_heads:GatedHead")
        register("missing", "nlpkit_lazy_heads:NoSuchHead")
        register("not-a-head", "nlpkit_lazy_heads:helper")
"""

LAZY_HEADS = """
    from nlpkit import LinearHead

    class GatedHead(LinearHead):
        pass

    def helper():
        pass
"""


def test_a_reference_is_imported_on_first_use_and_checked_then(plugin_site, tmp_path) -> None:
    (tmp_path / "site" / "nlpkit_lazy_heads.py").write_text(textwrap.dedent(LAZY_HEADS), encoding="utf-8")
    plugin_site("nlpkit-lazy", "lazy", "nlpkit_lazy", source=LAZY_PLUGIN)
    plugins = discover()
    heads = plugins["heads"]
    assert plugins.info["lazy"].status == "loaded" and "nlpkit_lazy_heads" not in sys.modules
    assert heads.entry("gated").path == "nlpkit_lazy_heads.GatedHead" and "'gated': GatedHead" in repr(heads)
    assert "nlpkit_lazy_heads" not in sys.modules  # listing, paths and repr import nothing
    assert heads["gated"] is sys.modules["nlpkit_lazy_heads"].GatedHead
    assert heads.name_of(heads["gated"]) == "gated"
    with pytest.raises(PluginError, match=r"plugin 'lazy' registered head 'missing' as 'nlpkit_lazy_heads:NoSuchHead', "
                       r"which cannot be imported: AttributeError"):  # fmt: skip
        heads["missing"]
    with pytest.raises(PluginError, match=r"head 'not-a-head' as .*which is not usable: .*must be a subclass"):
        heads["not-a-head"]


@pytest.mark.parametrize("command", [["--help"], ["plugins"], ["plugins", "--json"]])
def test_listing_commands_and_plugins_imports_no_model_code(command: list[str]) -> None:
    """What makes ``nlpkit --help`` and ``nlpkit plugins`` answer at once (benchmarks/startup.py times them)."""
    code = (
        "import sys, contextlib, io\n"
        "from nlpkit.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main({command!r})\n"
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'numpy', 'sentencepiece') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_plugin_command_cannot_hide_fit(plugin_site) -> None:
    source = """
        from nlpkit import Command, hookimpl

        @hookimpl
        def register_commands(register):
            register("fit", Command())
    """
    plugin_site("nlpkit-hijack", "hijack", "nlpkit_hijack", source=source)
    with pytest.warns(PluginWarning, match="command 'fit' would hide nlpkit's own 'fit'"):
        assert discover().info["hijack"].status == "failed"


def test_two_distributions_with_one_plugin_name_are_both_shown(plugin_site) -> None:
    plugin_site("nlpkit-toy", "toy", "nlpkit_toy")
    plugin_site("nlpkit-toy-fork", "toy", "nlpkit_toy_fork", source="")
    with pytest.warns(PluginWarning, match="another distribution already provides a plugin named 'toy'"):
        plugins = discover()
    statuses = {name: info.status for name, info in plugins.info.items() if name.startswith("toy")}
    assert sorted(statuses.values()) == ["failed", "loaded"] and len(statuses) == 2


def test_a_plugins_word_feature_template_is_read_by_a_tagger(plugin_site) -> None:
    from nlpkit_ner.features import FeatureTemplateOptions, WordFeatures

    source = """
        from nlpkit import hookimpl

        def vowels(word):
            return ["".join(c for c in word.lower() if c in "aeiou")]

        @hookimpl
        def register_word_features(register):
            register("vowels", vowels)
    """
    plugin_site("nlpkit-vowels", "vowels", "nlpkit_vowels", source=source)
    assert get_plugins()["word_features"].entry("vowels").plugin == "vowels"
    options = FeatureTemplateOptions(templates=["vowels", "shape"], neighbours=["vowels"], window=1)
    assert WordFeatures(options).values(["Banana", "split"]) == [
        ["vowels=aaa", "shape=Xx", "@-1=<outside>", "vowels@1=i"],
        ["vowels=i", "shape=x", "vowels@-1=aaa", "@1=<outside>"],
    ]
