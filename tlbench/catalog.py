"""``python -m tlbench.catalog``: every registered method and dataset, built-in or plugin.

Methods are listed with their family, the task kinds they support and their paper; datasets
with their task kind, domains and a description. ``--format json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .registry import DATASETS, METHODS


def catalog() -> dict[str, list[dict[str, Any]]]:
    """The catalogue as plain data: ``{"methods": [...], "datasets": [...]}``."""
    methods = [
        {
            "name": e.name,
            "family": getattr(e.obj, "family", ""),
            "supports": sorted(getattr(e.obj, "supports", ())),
            "needs_target_labels": bool(getattr(e.obj, "needs_target_labels", False)),
            "paper": getattr(e.obj, "paper", ""),
            "class": e.path,
        }
        for e in METHODS
    ]
    datasets = [
        {
            "name": e.name,
            "kind": e.meta.get("kind", ""),
            "domains": list(e.meta.get("domains", ())),
            "description": e.meta.get("description", ""),
            "loader": e.path,
        }
        for e in DATASETS
    ]
    return {"methods": methods, "datasets": datasets}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(cat: dict[str, list[dict[str, Any]]]) -> str:
    """The catalogue as two Markdown tables."""
    methods = _table(
        ["method", "family", "task kinds", "target labels", "paper"],
        [
            [
                m["name"],
                m["family"],
                ", ".join(m["supports"]),
                "needed" if m["needs_target_labels"] else "-",
                m["paper"],
            ]
            for m in cat["methods"]
        ],
    )
    datasets = _table(
        ["dataset", "kind", "domains", "description"],
        [
            [d["name"], d["kind"], ", ".join(d["domains"]), d["description"]]
            for d in cat["datasets"]
        ],
    )
    return f"## Methods\n\n{methods}\n\n## Datasets\n\n{datasets}\n"


def main(argv: list[str] | None = None) -> None:
    """Print the catalogue."""
    parser = argparse.ArgumentParser(prog="python -m tlbench.catalog", description=__doc__)
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    args = parser.parse_args(argv)
    cat = catalog()
    print(json.dumps(cat, indent=2) if args.format == "json" else render(cat), end="")


if __name__ == "__main__":
    main()
