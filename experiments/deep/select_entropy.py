"""Pick, per task and seed, the run with the lowest target prediction entropy among variants.

    .venv/bin/python experiments/deep/select_entropy.py outputs/deep/digits \\
        --labels dan dan_learned dan_w3 dan_learned_w3

Every run of the listed labels must have been made with ``--score-entropy`` (run_grid.py):
its record then holds ``selection_scores["entropy"]``, minus the mean prediction entropy on
the unlabeled target samples, computed on the last step's model. No target label is read to
choose: the accuracy of the chosen run is reported, next to each variant's own accuracy and
how often it was chosen. Prints a markdown table (mean ± std over seeds, in %).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--labels", nargs="+", required=True)
    args = ap.parse_args()
    runs: dict[tuple[str, int], dict[str, dict]] = defaultdict(dict)
    for path in sorted(Path(args.folder).glob("*/result.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") != "ok" or rec.get("label") not in args.labels:
            continue
        task = f"{rec['source']}→{rec['target']}"
        runs[(task, rec["seed"])][rec["label"]] = rec
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    chosen: dict[str, list[str]] = defaultdict(list)
    for (task, _seed), by_label in sorted(runs.items()):
        if set(by_label) != set(args.labels):
            continue  # a variant is missing for this seed: no fair choice
        for label, rec in by_label.items():
            rows[label][task].append(100 * rec["metrics"]["accuracy"])
        best = max(by_label.values(), key=lambda r: r["selection_scores"]["entropy"])
        rows["selected by target entropy"][task].append(100 * best["metrics"]["accuracy"])
        chosen[task].append(best["label"])
    tasks = sorted({t for r in rows.values() for t in r})
    print("| variant | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for label in [*args.labels, "selected by target entropy"]:
        cells = []
        for t in tasks:
            v = rows[label].get(t, [])
            cells.append(f"{np.mean(v):.1f} ± {np.std(v):.1f} ({len(v)})" if v else "—")
        print(f"| {label} | " + " | ".join(cells) + " |")
    for t in tasks:
        print(f"\n{t}: chosen per seed: {', '.join(chosen[t])}")


if __name__ == "__main__":
    main()
