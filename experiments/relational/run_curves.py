"""Scarce target data and learning curves for relational transfer (see README.md).

Usage: TLBENCH_DATA_DIR=... python experiments/relational/run_curves.py [source:target ...]
[--setting scarce|curve|all_folds] [--methods scratch,rdn_boost,...] [--out FILE.jsonl]
[--plot FILE.png] [--replot] [--negatives closed_world|treeboostler]

- ``scarce``: TreeBoostler's minimal-target-data protocol, ``dataset.train_fold=k`` for each
  target fold k: train on fold k, test on every other fold.
- ``curve``: test on each target fold in turn, train on the next n folds, for n = 1 and about
  25 %, 50 % and all but one of the folds (the points a domain's folds allow); writes a plot.
- ``all_folds``: the main table's protocol (test on one fold, train on all the others).
- ``--negatives treeboostler``: the recorded TreeBoostler runs' negatives (README, "Under the
  recorded runs' negatives"); with ``--setting scarce`` that is their protocol.

Prints one JSON line per (pair, method, point, fold), appends them to ``--out`` and prints a
Markdown summary (``--replot``: only the summary and the plot of the rows already in
``--out``). Nothing is chosen on the test folds: every method runs with its defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from tlbench.datasets.relational import relational
from tlbench.errors import IncompatibleTaskError
from tlbench.methods.relational.learner import RelationalScratch
from tlbench.methods.relational.metrics import relational_metrics
from tlbench.methods.relational.predicate_mapping import PredicateMapping
from tlbench.methods.relational.rdn_boost import RDNBoost
from tlbench.methods.relational.treeboostler import TreeBoostler

PAIRS = [
    ("imdb", "uwcse"),
    ("uwcse", "imdb"),
    ("imdb", "cora"),
    ("cora", "imdb"),
    ("yeast", "twitter"),
    ("twitter", "yeast"),
    ("nell_sports", "nell_finances"),
    ("nell_finances", "nell_sports"),
]
PERM = {"arg_permutations": True, "same_target": True}
VA = 200  # the clause learner's max_constants
TBMODES = {"recursion": True, "max_constants": 0}
GIBBS = {"recursion": True, "recursive_inference": "gibbs"}
METHODS = {
    "scratch": lambda: RelationalScratch(),
    "rdn_boost": lambda: RDNBoost(),
    "mapped": lambda: PredicateMapping(revision="none"),
    "mapped+revision": lambda: PredicateMapping(revision="full"),
    "treeboostler+weights": lambda: TreeBoostler(revision="weights"),
    "treeboostler+full": lambda: TreeBoostler(revision="full"),
    # the recorded TreeBoostler runs' mapping options: arguments swapped, targets shared
    "mapped+perm": lambda: PredicateMapping(revision="none", **PERM),
    "treeboostler+weights+perm": lambda: TreeBoostler(revision="weights", **PERM),
    "treeboostler+full+perm": lambda: TreeBoostler(revision="full", **PERM),
    # recursion (BoostSRL's recursion=true): trees may read the target's other known atoms
    "rdn_boost+rec": lambda: RDNBoost(recursion=True),
    "treeboostler+none+rec": lambda: TreeBoostler(revision="none", recursion=True),
    "treeboostler+weights+rec": lambda: TreeBoostler(revision="weights", recursion=True),
    "treeboostler+full+rec": lambda: TreeBoostler(revision="full", recursion=True),
    # recursion with Gibbs sampling in place of hard iterative classification when predicting
    "rdn_boost+rec+gibbs": lambda: RDNBoost(recursion=True, recursive_inference="gibbs"),
    "treeboostler+none+rec+gibbs": lambda: TreeBoostler(revision="none", **GIBBS),
    "treeboostler+weights+rec+gibbs": lambda: TreeBoostler(revision="weights", **GIBBS),
    "treeboostler+full+rec+gibbs": lambda: TreeBoostler(revision="full", **GIBBS),
    # TreeBoostler's released revision loop (least pure leaf per tree, subtrees, candidates
    # judged by validation AUC-ROC) in place of the variance revision points
    "treeboostler+purity": lambda: TreeBoostler(revision="full", revision_points="purity"),
    "treeboostler+purity+cll": lambda: TreeBoostler(
        revision="full", revision_points="purity", revision_criterion="cll"
    ),
    "treeboostler+purity+rec": lambda: TreeBoostler(
        revision="full", revision_points="purity", recursion=True
    ),
    # the recorded TreeBoostler runs' modes (TreeBoostler's datasets/get_datasets.py: every
    # argument + or -, never # ) with their recursion=true: no constant tests, no head tests;
    # a type reaches the trees only through recursion_<target>
    "rdn_boost+tbmodes": lambda: RDNBoost(recursion=True, max_constants=0),
    "treeboostler+none+tbmodes": lambda: TreeBoostler(revision="none", **TBMODES),
    "treeboostler+weights+tbmodes": lambda: TreeBoostler(revision="weights", **TBMODES),
    "treeboostler+full+tbmodes": lambda: TreeBoostler(revision="full", **TBMODES),
    # value arguments (a type of the target no other predicate uses) take constants, as in
    # the clause learner: Yeast's protein classes
    "rdn_boost+va": lambda: RDNBoost(max_value_arg_constants=VA),
    "treeboostler+weights+va": lambda: TreeBoostler(revision="weights", max_value_arg_constants=VA),
    "treeboostler+full+va": lambda: TreeBoostler(revision="full", max_value_arg_constants=VA),
}
DIAG = (
    "n_mapped_clauses",
    "n_source_nodes",
    "n_mapped_nodes",
    "n_pruned",
    "n_expanded",
    "revision_kept",
    "n_recursive_nodes",
    "n_source_recursive_nodes",
    "n_final_recursive_nodes",
    "n_revision_points",
    "n_relearned",
    "n_revision_iterations",
)


def curve_points(n_folds: int) -> list[int]:
    """Training-fold counts: 1, ~25 %, ~50 %, all but one (deduplicated, within 1..n-1)."""
    raw = [1, round(0.25 * n_folds), round(0.5 * n_folds), n_folds - 1]
    return sorted({min(max(int(k), 1), n_folds - 1) for k in raw})


def splits(setting: str, n_folds: int) -> list[tuple[str, dict]]:
    """(point label, dataset options) for each run of a setting."""
    if setting == "scarce":
        return [("1 (scarce)", {"train_fold": k}) for k in range(n_folds)]
    if setting == "all_folds":
        return [(f"{n_folds - 1} (all)", {"test_fold": k}) for k in range(n_folds)]
    return [
        (str(n), {"test_fold": k, "n_train_folds": n})
        for n in curve_points(n_folds)
        for k in range(n_folds)
    ]


def run_one(name: str, task, row: dict) -> dict:
    method = METHODS[name]()
    t0 = time.perf_counter()
    try:
        method.fit(task.without_test())  # the method never sees the test folds
    except IncompatibleTaskError as exc:
        return {**row, "skipped": str(exc)}
    fit_s = time.perf_counter() - t0
    p = method.predict_proba(task.test.X)[:, 1]
    m = relational_metrics(task.test.y, p)
    out = {**row, **{k: round(v, 4) for k, v in m.items()}, "fit_s": round(fit_s, 2)}
    diag = getattr(method, "diagnostics_", {})
    if getattr(method, "mapping_", None) is not None:
        out["mapping"] = method.mapping_
    for key in DIAG:
        if key in diag:
            out[key] = diag[key]
    return out


def run_key(row: dict) -> tuple:
    """What identifies one run of a sweep (the row's settings, not its results)."""
    return (
        row["pair"],
        row["setting"],
        row["point"],
        row["method"],
        tuple(row["train_folds"]),
        tuple(row["test_folds"]),
        row.get("negatives", "closed_world"),
    )


def summary(rows: list[dict], methods: list[str]) -> None:
    print("\n| pair | train folds | method | AUC-ROC | AUC-PR | fit s | n |")
    print("|---|---|---|---|---|---|---|")
    for pair in dict.fromkeys(r["pair"] for r in rows):
        for point in dict.fromkeys(r["point"] for r in rows if r["pair"] == pair):
            for name in methods:
                sel = [
                    r
                    for r in rows
                    if r["pair"] == pair and r["point"] == point and r["method"] == name
                ]
                ok = [r for r in sel if "auc_roc" in r]
                if not sel:
                    continue
                if not ok:
                    print(f"| {pair} | {point} | {name} | skipped | | | {len(sel)} |")
                    continue
                roc = [r["auc_roc"] for r in ok]
                pr = [r["auc_pr"] for r in ok]
                fit = np.mean([r["fit_s"] for r in ok])
                print(
                    f"| {pair} | {point} | {name} | {np.mean(roc):.3f} ± {np.std(roc):.3f} "
                    f"| {np.mean(pr):.3f} ± {np.std(pr):.3f} | {fit:.1f} | {len(ok)} |"
                )


def plot(rows: list[dict], methods: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    fig, axes = plt.subplots(2, len(pairs), figsize=(4 * len(pairs), 6), squeeze=False)
    for j, pair in enumerate(pairs):
        for name in methods:
            pts = {}
            for r in rows:
                if r["pair"] == pair and r["method"] == name and "auc_roc" in r:
                    pts.setdefault(int(r["point"].split()[0]), []).append(r)
            if not pts:
                continue
            xs = sorted(pts)
            for i, key in enumerate(("auc_roc", "auc_pr")):
                ys = [np.mean([r[key] for r in pts[x]]) for x in xs]
                axes[i, j].plot(xs, ys, marker="o", label=name)
        axes[0, j].set_title(pair)
        axes[0, j].set_ylabel("AUC-ROC")
        axes[1, j].set_ylabel("AUC-PR (average precision)")
        axes[1, j].set_xlabel("target training folds")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="*", help="source:target, default all eight")
    ap.add_argument("--setting", default="scarce", choices=["scarce", "curve", "all_folds"])
    ap.add_argument(
        "--methods",
        default=",".join(
            m
            for m in METHODS
            if not m.endswith(("+perm", "+rec", "+va", "+tbmodes", "+purity", "+cll", "+gibbs"))
        ),
    )
    ap.add_argument("--out", default=None, help="append the rows to this jsonl")
    ap.add_argument("--plot", default=None, help="learning-curve PNG (setting curve)")
    ap.add_argument(
        "--replot", action="store_true", help="only summarise and plot the rows of --out"
    )
    ap.add_argument("--negatives", default="closed_world", help="closed_world | treeboostler")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="skip the runs whose row is already in --out (a stopped or killed sweep goes on)",
    )
    args = ap.parse_args()
    methods = args.methods.split(",")
    if args.replot:
        with open(args.out) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        rows = [
            r
            for r in rows
            if r["setting"] == args.setting and r.get("negatives", "closed_world") == args.negatives
        ]
        summary(rows, methods)
        if args.plot:
            plot(rows, methods, args.plot)
        return
    pairs = [tuple(p.split(":")) for p in args.pairs] or PAIRS
    data_dir = os.environ.get("TLBENCH_DATA_DIR", "data")
    rows = []
    done = {}
    if args.resume and args.out and os.path.exists(args.out):
        with open(args.out) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    done[run_key(r)] = r
    for source, target in pairs:
        common = dict(source=source, target=target, data_dir=data_dir, negatives=args.negatives)
        k = relational(**common).info["target_domain"]
        for point, options in splits(args.setting, k["n_folds"]):
            task = relational(**common, **options)
            for name in methods:
                row = {
                    "pair": f"{source}->{target}",
                    "setting": args.setting,
                    "point": point,
                    "method": name,
                    "train_folds": task.info["train_folds"],
                    "test_folds": task.info["test_folds"],
                }
                if args.negatives != "closed_world":
                    row["negatives"] = args.negatives
                if run_key(row) in done:
                    rows.append(done[run_key(row)])
                    continue
                row = run_one(name, task, row)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
    summary(rows, methods)
    if args.plot:
        plot(rows, methods, args.plot)


if __name__ == "__main__":
    main()
