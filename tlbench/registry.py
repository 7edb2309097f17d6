"""One registry for methods and one for datasets.

Built-in methods and datasets register with a decorator when their module is imported;
third-party packages register through the entry-point groups ``tlbench.methods`` and
``tlbench.datasets``, loaded lazily the first time a registry is read. Hydra's ``_target_``
builds objects; the registry lists them with their metadata (family, supported task kinds,
paper, domains) for the catalogue, the tests and the runner.
"""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar

from .errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """A registered object and what the catalogue says about it."""

    name: str
    obj: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The dotted import path Hydra's ``_target_`` uses for this object."""
        return f"{self.obj.__module__}.{self.obj.__qualname__}"


class Registry:
    """A name -> object map that refuses to let two objects claim one name.

    Parameters
    ----------
    kind : str
        What it holds (``"method"`` or ``"dataset"``), for messages.
    group : str
        The entry-point group that third-party packages register under.
    builtin : str
        The module whose import registers the built-ins.
    """

    def __init__(self, kind: str, group: str, builtin: str) -> None:
        self.kind = kind
        self.group = group
        self.builtin = builtin
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Register the decorated class or function under ``name``, with catalogue metadata."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: Any, **meta: Any) -> None:
        """Register ``obj`` under ``name``; raise if a different object already holds it."""
        if not name or name != name.strip():
            raise ConfigError(f"invalid {self.kind} name {name!r}")
        old = self._entries.get(name)
        if old is not None and _identity(old.obj) != _identity(obj):
            raise ConfigError(
                f"{self.kind} name {name!r} is claimed twice: by {old.path} and by "
                f"{obj.__module__}.{obj.__qualname__}; rename one of them"
            )
        if isinstance(obj, type):
            obj.name = name  # the registry name, read by the runner for the result record
        self._entries[name] = Entry(name, obj, dict(meta))

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        importlib.import_module(self.builtin)
        for ep in entry_points(group=self.group):
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin must not hide the built-ins
                log.warning(
                    "could not load %s plugin %r (%s): %s", self.kind, ep.name, ep.value, exc
                )
                continue
            # ``pkg.module`` registers through its decorators; ``pkg.module:Obj`` may be bare.
            if not isinstance(loaded, types.ModuleType) and ep.name not in self._entries:
                self.add(ep.name, loaded)

    def get(self, name: str) -> Any:
        """The object registered as ``name``; an unknown name lists the valid ones."""
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        """The full :class:`Entry` of ``name``."""
        self._ensure_loaded()
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._ensure_loaded()
        return sorted(self._entries)

    def find(self, obj_or_path: Any) -> Entry | None:
        """The entry of an object or of its dotted path (a Hydra ``_target_``), if registered."""
        self._ensure_loaded()
        path = obj_or_path if isinstance(obj_or_path, str) else _identity(obj_or_path)
        return next((e for e in self._entries.values() if e.path == path), None)

    def __iter__(self) -> Iterator[Entry]:
        self._ensure_loaded()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries


def _identity(obj: Any) -> str:
    # Compare by import path, not object identity: re-importing a module (pytest, reload)
    # re-creates the class, which must not count as a second claimant.
    return f"{obj.__module__}.{obj.__qualname__}"


METHODS = Registry("method", "tlbench.methods", "tlbench.methods")
DATASETS = Registry("dataset", "tlbench.datasets", "tlbench.datasets")


def register_method(name: str, **meta: Any) -> Callable[[T], T]:
    """Register a :class:`~tlbench.methods.base.TransferMethod` subclass under ``name``.

    Family, supported task kinds and paper are read from the class attributes.
    """
    return METHODS.register(name, **meta)


def register_dataset(
    name: str, *, kind: str, domains: tuple[str, ...] = (), description: str = "", **meta: Any
) -> Callable[[T], T]:
    """Register a function ``(**options) -> TransferTask`` as dataset ``name``.

    Parameters
    ----------
    name : str
        The name users type (``dataset=name``); the YAML ``conf/dataset/<name>.yaml`` must exist.
    kind : str
        The task kind it produces (``tabular``, ``image`` or ``relational``).
    domains : tuple of str
        The domains ``dataset.source`` and ``dataset.target`` may name.
    description : str
        One line for the catalogue.
    **meta
        Anything else the catalogue should show (e.g. ``paper``).
    """
    return DATASETS.register(
        name, kind=kind, domains=tuple(domains), description=description, **meta
    )


def available_methods() -> list[str]:
    """Names of all registered methods (built-in and plugins)."""
    return METHODS.names()


def available_datasets() -> list[str]:
    """Names of all registered datasets (built-in and plugins)."""
    return DATASETS.names()
