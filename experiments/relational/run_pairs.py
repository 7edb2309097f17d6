"""Cross-validate relational transfer over the eight benchmark pairs (see README.md).

Usage: TLBENCH_DATA_DIR=... python experiments/relational/run_pairs.py [source:target ...]
[--train-folds K] [--methods scratch,mapped,...] [--neg-ratio R] [--max-recursive-len L]
[--negatives closed_world|treeboostler] [--boostsrl]
(--boostsrl: the BoostSRL-format domains of relational_boostsrl/, e.g. uwcse:imdb_workedunder.)
Prints one JSON line per (pair, method, test fold) and a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from tlbench.datasets.relational import relational, relational_boostsrl
from tlbench.errors import IncompatibleTaskError
from tlbench.methods.relational.learner import RelationalScratch
from tlbench.methods.relational.metrics import relational_metrics
from tlbench.methods.relational.predicate_mapping import PredicateMapping

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
METHODS = {
    "scratch": lambda **kw: RelationalScratch(**kw),
    "mapped": lambda **kw: PredicateMapping(revision="none", **kw),
    "mapped+weights": lambda **kw: PredicateMapping(revision="weights", **kw),
    "mapped+revision": lambda **kw: PredicateMapping(revision="full", **kw),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="*", help="source:target, default all eight")
    ap.add_argument("--train-folds", type=int, default=None)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--neg-ratio", type=float, default=None)
    ap.add_argument("--max-recursive-len", type=int, default=2)
    ap.add_argument("--negatives", default="closed_world", help="closed_world | treeboostler")
    ap.add_argument("--boostsrl", action="store_true", help="BoostSRL-format domains")
    args = ap.parse_args()
    if args.boostsrl:
        dataset, options = relational_boostsrl, {}
    else:
        dataset = relational
        options = {"neg_ratio": args.neg_ratio, "negatives": args.negatives}
    pairs = [tuple(p.split(":")) for p in args.pairs] or PAIRS
    data_dir = os.environ.get("TLBENCH_DATA_DIR", "data")
    rows = []
    for source, target in pairs:
        k = dataset(source=source, target=target, data_dir=data_dir, **options).info[
            "target_domain"
        ]
        for fold in range(k["n_folds"]):
            task = dataset(
                source=source,
                target=target,
                data_dir=data_dir,
                test_fold=fold,
                n_train_folds=args.train_folds,
                **options,
            )
            for name in args.methods.split(","):
                method = METHODS[name](max_recursive_len=args.max_recursive_len)
                t0 = time.perf_counter()
                try:
                    method.fit(task.without_test())
                except IncompatibleTaskError as exc:  # e.g. nothing survives the mapping
                    row = {"pair": f"{source}->{target}", "method": name, "test_fold": fold}
                    print(json.dumps({**row, "skipped": str(exc)}), flush=True)
                    continue
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                p = method.predict_proba(task.test.X)[:, 1]
                pred_s = time.perf_counter() - t0
                m = relational_metrics(task.test.y, p)
                row = {
                    "pair": f"{source}->{target}",
                    "method": name,
                    "test_fold": fold,
                    **{key: round(v, 4) for key, v in m.items()},
                    "fit_s": round(fit_s, 2),
                    "predict_s": round(pred_s, 2),
                    "mapping": getattr(method, "mapping_", None),
                }
                diag = getattr(method, "diagnostics_", {})
                for key in ("n_source_clauses", "n_constant_clauses", "n_mapped_clauses"):
                    if key in diag:
                        row[key] = diag[key]
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| pair | method | AUC-ROC | AUC-PR | CLL | fit s |")
    print("|---|---|---|---|---|---|")
    for pair in dict.fromkeys(r["pair"] for r in rows):
        for name in args.methods.split(","):
            sel = [r for r in rows if r["pair"] == pair and r["method"] == name]
            if not sel:
                continue
            cell = {}
            for key in ("auc_roc", "auc_pr", "cll"):
                values = [r[key] for r in sel]
                cell[key] = f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"
            fit = np.mean([r["fit_s"] for r in sel])
            print(
                f"| {pair} | {name} | {cell['auc_roc']} | {cell['auc_pr']} | {cell['cll']} "
                f"| {fit:.1f} |"
            )


if __name__ == "__main__":
    main()
