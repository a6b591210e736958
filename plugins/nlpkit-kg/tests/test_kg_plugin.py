"""The kg plugin loads through its entry point."""

from nlpkit.plugin.loader import discover


def test_plugin_is_discovered_and_loaded() -> None:
    info = discover().info["kg"]
    assert info.status == "loaded", info.error
    assert info.distribution == "nlpkit-kg"
