"""A grid study's rows side by side: each grid point, the point each protocol chose, the oracle.

    .venv/bin/python experiments/deep/selection_table.py \\
        outputs/multirun/deep_adversarial_selection_mnist_usps \\
        outputs/multirun/deep_adversarial_selection_usps_mnist

Per label (method) and task, one row per grid point (its hyperparameters as the runs' configs
differ), then per protocol the accuracy of the grid point it chose per seed (the choice is
``tlbench.report``'s: the best ``selection_scores[protocol]``), and the ORACLE row (the best
grid point on the target test labels, which no protocol may read). Accuracy in %, mean ± std
over seeds; the chosen grid points are listed per seed.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tlbench.report import as_protocol, select

PROTOCOLS = ("source_val", "iwv", "dev", "reverse", "entropy", "oracle")
#: the config entries that name a grid point (those that vary within a label)
KEYS = (
    ("method", "confusion_weight"),
    ("method", "domain_weight"),
    ("method", "mcc_weight"),
    ("trainer", "optimizer"),
    ("trainer", "max_steps"),
)


def point(rec: dict[str, Any], keys: list[tuple[str, str]]) -> str:
    cfg = rec["config"]
    return ", ".join(f"{k}={cfg[s].get(k)}" for s, k in keys)


def fmt(values: list[float]) -> str:
    a = 100 * np.asarray(values)
    return f"{a.mean():.1f} ± {a.std(ddof=1) if len(a) > 1 else 0:.1f} ({len(a)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    recs = [
        json.loads(p.read_text()) for d in args.dirs for p in sorted(Path(d).rglob("result.json"))
    ]
    recs = [r for r in recs if r.get("status") == "ok"]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in recs:
        groups[(r.get("label") or r["method"], f"{r['source']}→{r['target']}")].append(r)
    for (label, task), rs in sorted(groups.items()):
        keys = [(s, k) for s, k in KEYS if len({json.dumps(r["config"][s].get(k)) for r in rs}) > 1]
        print(f"\n#### {label}, {task}\n")
        print("| row | accuracy | per seed (grid point chosen) |")
        print("|---|---|---|")
        by_point: dict[str, dict[int, float]] = defaultdict(dict)
        for r in rs:
            by_point[point(r, keys)][r["seed"]] = r["metrics"]["accuracy"]
        for p, seeds in sorted(by_point.items()):
            accs = [seeds[s] for s in sorted(seeds)]
            print(f"| grid point {p} | {fmt(accs)} | "
                  f"{' / '.join(f'{100 * a:.2f}' for a in accs)} |")  # fmt: skip
        for proto in PROTOCOLS:
            chosen, _ = select(as_protocol(rs, proto), strict=False)
            chosen = sorted(chosen, key=lambda r: r["seed"])
            if not chosen:
                continue
            name = "ORACLE (target test labels)" if proto == "oracle" else f"chosen by `{proto}`"
            picks = " / ".join(
                f"{100 * r['metrics']['accuracy']:.2f} ({point(r, keys)})" for r in chosen
            )
            print(f"| {name} | {fmt([r['metrics']['accuracy'] for r in chosen])} | {picks} |")


if __name__ == "__main__":
    main()
