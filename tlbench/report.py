"""``python -m tlbench.report DIR``: a method x task table from every ``result.json`` under DIR.

Cells are mean ± std over seeds (population std; ``n`` runs), in percent. Rows are grouped per
dataset; an ``avg`` column averages the per-task means when a method has every task. Skipped
and failed runs are listed under the table. The table prints as Markdown; ``--csv`` writes one
row per (dataset, method, task) with the raw statistics (default ``DIR/report.csv``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .results import collect


def task_label(rec: dict[str, Any]) -> str:
    """``source→target`` of a record (the dataset name when it has no domains)."""
    src, tgt = rec.get("source"), rec.get("target")
    return f"{src}→{tgt}" if src or tgt else str(rec.get("dataset"))


def summarize(records: Iterable[dict[str, Any]], metric: str = "accuracy") -> list[dict[str, Any]]:
    """Mean and std of ``metric`` over seeds per (dataset, method, task), from ``ok`` records."""
    groups: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for rec in records:
        value = rec.get("metrics", {}).get(metric)
        if rec.get("status") == "ok" and value is not None:
            key = (str(rec["dataset"]), str(rec["method"]), task_label(rec))
            groups[key].append((rec.get("seed"), float(value)))
    rows = []
    for (dataset, method, task), values in sorted(groups.items()):
        vals = np.array([v for _, v in values])
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "task": task,
                "metric": metric,
                "mean": float(vals.mean()),
                "std": float(vals.std()),
                "n": len(vals),
                "seeds": sorted(s for s, _ in values if s is not None),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], scale: float = 100.0, decimals: int = 1) -> str:
    """One Markdown table per dataset: methods as rows, tasks as columns."""
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        sub = [r for r in rows if r["dataset"] == dataset]
        tasks = sorted({r["task"] for r in sub})
        methods = sorted({r["method"] for r in sub})
        cell = {(r["method"], r["task"]): r for r in sub}
        header = ["method", *tasks] + (["avg"] if len(tasks) > 1 else [])
        lines = [f"### {dataset} ({sub[0]['metric']}, %)", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for m in methods:
            cells, means = [], []
            for t in tasks:
                r = cell.get((m, t))
                if r is None:
                    cells.append("—")
                    continue
                means.append(r["mean"])
                std = f" ± {scale * r['std']:.{decimals}f}" if r["n"] > 1 else ""
                count = f" (n={r['n']})" if r["n"] > 1 else ""
                cells.append(f"{scale * r['mean']:.{decimals}f}{std}{count}")
            if len(tasks) > 1:
                avg = f"{scale * np.mean(means):.{decimals}f}" if len(means) == len(tasks) else "—"
                cells.append(avg)
            lines.append("| " + " | ".join([m, *cells]) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write the summary rows as CSV."""
    path = Path(path)
    fields = ["dataset", "method", "task", "metric", "mean", "std", "n", "seeds"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"]))})
    return path


def main(argv: list[str] | None = None) -> int:
    """Print the table of the records under a folder; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tlbench.report", description=__doc__)
    parser.add_argument("dir", help="folder to search for result.json files (recursively)")
    parser.add_argument("--metric", default="accuracy", help="metric to tabulate")
    parser.add_argument("--csv", default=None, help="CSV output path (default DIR/report.csv)")
    parser.add_argument("--decimals", type=int, default=1, help="decimals of the percentages")
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"tlbench.report: error: {root} is not a folder", file=sys.stderr)
        return 2
    records = collect(root)
    if not records:
        print(f"tlbench.report: error: no result.json under {root}", file=sys.stderr)
        return 2
    rows = summarize(records, args.metric)
    print(
        markdown(rows, decimals=args.decimals)
        if rows
        else f"no successful run reports {args.metric!r}"
    )
    other = [r for r in records if r.get("status") != "ok"]
    if other:
        print(f"\n{len(other)} run(s) without a result:")
        for r in other:
            print(
                f"- {r['method']} on {r['dataset']} {task_label(r)} seed {r.get('seed')}: "
                f"{r.get('status')} ({r.get('reason')})"
            )
    if rows:
        path = write_csv(rows, args.csv or root / "report.csv")
        print(f"\nCSV: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
