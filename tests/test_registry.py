"""The registry: decorators, duplicate names, unknown names, entry points."""

from __future__ import annotations

import pytest

from tlbench import ConfigError, available_datasets, available_methods
from tlbench.registry import DATASETS, METHODS, Registry


def test_builtins_are_registered():
    assert {"source_only", "target_only"} <= set(available_methods())
    assert {"toy_shift", "toy_images", "toy_relational"} <= set(available_datasets())
    assert METHODS.get("source_only").name == "source_only"
    assert DATASETS.entry("toy_relational").meta["domains"] == ("epidemic", "network")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; valid names: .*source_only"):
        METHODS.get("nope")


def _fresh() -> Registry:
    reg = Registry("method", "tlbench.test-no-such-group", "tlbench.errors")
    return reg


def test_two_classes_cannot_claim_one_name():
    reg = _fresh()

    @reg.register("same")
    class A:
        pass

    class B:
        pass

    with pytest.raises(ConfigError, match="claimed twice: by .*A and by .*B"):
        reg.add("same", B)


def test_reregistering_the_same_class_is_allowed():
    reg = _fresh()

    class A:
        pass

    reg.add("a", A)
    reg.add("a", A)  # a module imported twice (reload) registers the same path again
    assert reg.names() == ["a"]


def test_find_by_target_path():
    entry = METHODS.find("tlbench.methods.baseline.SourceOnly")
    assert entry is not None and entry.name == "source_only"
    assert METHODS.find("tlbench.nothing.Here") is None


def test_entry_points_are_loaded(monkeypatch):
    reg = Registry("method", "tlbench.methods", "tlbench.errors")

    class Plugin:
        family = "baseline"

    Plugin.__module__ = "fake_plugin"

    class EP:
        name = "fake"
        value = "fake_plugin:Plugin"

        def load(self):
            return Plugin

    class Broken:
        name = "broken"
        value = "missing.module"

        def load(self):
            raise ImportError("no module named missing")

    monkeypatch.setattr("tlbench.registry.entry_points", lambda group: [EP(), Broken()])
    assert reg.names() == ["fake"]  # a broken plugin is logged and skipped
    assert reg.get("fake") is Plugin
