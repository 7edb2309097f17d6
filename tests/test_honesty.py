"""Honest selection and resume on every path, and the checks that guard them (issue 16)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The Python release that added each typing name tlbench might import (the docs' "Added in").
TYPING_ADDED = {"Self": (3, 11), "Never": (3, 11), "LiteralString": (3, 11),
                "assert_never": (3, 11), "reveal_type": (3, 11), "override": (3, 12),
                "TypeIs": (3, 13), "ReadOnly": (3, 13)}  # fmt: skip


def _floor() -> tuple[int, int]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    major, minor = re.fullmatch(r">=\s*(\d+)\.(\d+)", meta["project"]["requires-python"]).groups()
    return int(major), int(minor)


def test_python_floor_covers_every_typing_import():
    """``requires-python`` admits no interpreter whose ``typing`` lacks a name tlbench imports."""
    floor = _floor()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["tool"]["ruff"]["target-version"] == f"py{floor[0]}{floor[1]}"
    for path in sorted((ROOT / "tlbench").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=floor)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "typing":
                for alias in node.names:
                    added = TYPING_ADDED.get(alias.name, (3, 0))
                    assert added <= floor, f"{path}: typing.{alias.name} needs {added}"
            if isinstance(node, ast.ImportFrom) and node.module == "typing_extensions":
                raise AssertionError(f"{path}: typing_extensions is not a dependency")
