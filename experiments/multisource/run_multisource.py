"""Multi-source transfer tables (issue 13): three sources -> one target, k labeled target per class.

    OMP_NUM_THREADS=1 TLBENCH_DATA_DIR=../shared/data .venv/bin/python \
        experiments/multisource/run_multisource.py {surf,amazon} [--seeds 0 1 2] [--k 1 3 5]
    .venv/bin/python experiments/multisource/run_multisource.py {surf,amazon} --table

Every run is the runner's ``run`` (what ``python -m tlbench`` does) with
``dataset.source=[three domains] dataset.target=<the fourth> dataset.target_labeled=k`` and
``selection=none``: every hyperparameter is the method's default, fixed before the first run
(no choice is made on target labels; ``best_single_source`` chooses its source on the labeled
target *training* samples, never on the scored ones). All rows use the same classifier, a linear
SVM (libsvm, C = 1): the baselines get ``method.estimator=linear_svm``, the boosting methods use
it as their base learner. Records go to ``outputs/multirun/multisource_<study>/``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from hydra import compose, initialize_config_dir

from tlbench.runner import run

REPO = Path(__file__).resolve().parents[2]
METHODS = ("source_only", "target_only", "source_and_target", "best_single_source",
           "tradaboost", "mstradaboost", "tasktradaboost")  # fmt: skip
BASELINES = ("source_only", "target_only", "source_and_target")
STUDIES = {
    "surf": ("office_caltech_surf", ("amazon", "caltech", "dslr", "webcam"), []),
    "amazon": ("amazon_reviews", ("books", "dvd", "electronics", "kitchen"), []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--table", action="store_true", help="print the tables of the records")
    args = parser.parse_args()
    dataset, domains, extra = STUDIES[args.study]
    out = REPO / "outputs" / "multirun" / f"multisource_{args.study}"
    if args.table:
        print(tables(out, domains, args.k, args.methods))
        return
    for target, k, seed in itertools.product(domains, args.k, args.seeds):
        sources = [d for d in domains if d != target]
        for method in args.methods:
            overrides = [f"method={method}", f"dataset={dataset}",
                         f"dataset.source=[{','.join(sources)}]", f"dataset.target={target}",
                         f"dataset.target_labeled={k}", f"seed={seed}", "selection=none",
                         f"label={method}_k{k}", *extra]  # fmt: skip
            if method in BASELINES:
                overrides.append("method.estimator=linear_svm")
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose(config_name="config", overrides=overrides)
            rec = run(cfg, out / f"{method}_k{k}_{target}_seed{seed}", overrides)
            acc = rec["metrics"].get("accuracy")
            acc = "" if acc is None else f"{100 * acc:.2f}"
            print(f"{method:18s} k={k} -> {target:12s} seed {seed}: {rec['status']} {acc} "
                  f"({rec.get('fit_seconds') or 0:.1f} s)", flush=True)  # fmt: skip


def tables(out: Path, domains: tuple[str, ...], ks: list[int], methods: list[str]) -> str:
    """One markdown table per k: methods x targets (mean ± std over seeds), and the average."""
    import json
    from collections import defaultdict

    import numpy as np

    acc: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    diag: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for path in sorted(out.glob("*/result.json")):
        rec = json.loads(path.read_text())
        if rec["status"] != "ok":
            continue
        k = rec["config"]["dataset"]["target_labeled"]
        acc[rec["method"], k, rec["target"]].append(100 * rec["metrics"]["accuracy"])
        diag[rec["method"], k].append(rec.get("diagnostics") or {})
    lines = []
    for k in ks:
        head = [f"{'+'.join(d for d in domains if d != t)} → {t}" for t in domains]
        lines += [f"\n**k = {k} labeled target samples per class**\n",
                  "| method | " + " | ".join(head) + " | avg |",
                  "|---" * (len(domains) + 2) + "|"]  # fmt: skip
        for m in methods:
            cells, means = [], []
            for t in domains:
                v = acc.get((m, k, t))
                cells.append("—" if not v else f"{np.mean(v):.1f} ± {np.std(v):.1f} ({len(v)})")
                means.append(np.mean(v) if v else np.nan)
            avg = "—" if np.isnan(means).any() else f"{np.mean(means):.1f}"
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {avg} |")
    won = defaultdict(lambda: defaultdict(int))
    for (m, _), ds in diag.items():
        for d in ds:
            for s, n in (d.get("rounds_won") or {}).items():
                won[m][s] += n
    if won:
        lines.append("\nRounds won per source (all tasks, k and seeds):")
        lines += [
            f"- {m}: " + ", ".join(f"{s} {n}" for s, n in sorted(w.items())) for m, w in won.items()
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
