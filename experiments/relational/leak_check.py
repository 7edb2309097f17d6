"""How much reading the test fold's true target atoms would lift the recursive clauses.

Not an evaluation protocol: a diagnostic for the gap to the recorded TreeBoostler runs
(README.md, "Why these numbers are not the recorded ones"). TreeBoostler's loader
(``datasets/get_datasets.py``, ``load``) adds ``recursion_<target>`` facts for every positive
of every fold, the test folds included, so its recursive tree tests can read the labels of a
test atom's neighbours at test time. Here the fitted model is given the same: its evidence
(the true target atoms recursive clauses read) becomes the training positives plus the test
positives; a clause never reads the atom it predicts (``Z != X``).

The tree methods with ``recursion=True`` (``rdn_boost+rec``, ``treeboostler+full+rec``, ... of
``run_curves.py``) get the same: their known ``recursion_<target>`` atoms become the training
positives plus the test positives, and an example never reads an atom of its own subject.
``--setting scarce`` trains on one target fold and tests on the others (the recorded runs'
protocol); the default tests on one fold and trains on the others.

Usage: TLBENCH_DATA_DIR=... python experiments/relational/leak_check.py [source:target ...]
[--negatives closed_world|treeboostler] [--methods scratch,mapped+revision]
[--setting all_folds|scarce] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from run_curves import METHODS as TREE_METHODS  # run from this folder
from run_pairs import METHODS as CLAUSE_METHODS

from tlbench.datasets.relational import relational
from tlbench.methods.relational.learner import positives
from tlbench.methods.relational.metrics import relational_metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="*", default=["twitter:yeast", "yeast:twitter"])
    ap.add_argument("--negatives", default="closed_world")
    ap.add_argument("--methods", default="scratch,mapped+revision")
    ap.add_argument("--setting", default="all_folds", choices=["all_folds", "scarce"])
    ap.add_argument("--out", default=None, help="append the rows to this jsonl")
    args = ap.parse_args()
    methods = {**TREE_METHODS, **CLAUSE_METHODS}
    data_dir = os.environ.get("TLBENCH_DATA_DIR", "data")
    for pair in args.pairs:
        source, target = pair.split(":")
        first = relational(source=source, target=target, data_dir=data_dir)
        for fold in range(first.info["target_domain"]["n_folds"]):
            task = relational(
                source=source,
                target=target,
                data_dir=data_dir,
                negatives=args.negatives,
                **{"train_fold" if args.setting == "scarce" else "test_fold": fold},
            )
            test_pos = positives(task.test.X, task.test.y)
            for name in args.methods.split(","):
                method = methods[name]().fit(task.without_test())
                honest = relational_metrics(task.test.y, method.predict_proba(task.test.X)[:, 1])
                method.model_.evidence = tuple(method.model_.evidence) + tuple(test_pos)
                leaky = relational_metrics(task.test.y, method.predict_proba(task.test.X)[:, 1])
                row = {
                    "pair": f"{source}->{target}",
                    "negatives": args.negatives,
                    "method": name,
                    "setting": args.setting,
                    "train_folds": task.info["train_folds"],
                    "test_folds": task.info["test_folds"],
                    "auc_roc": round(honest["auc_roc"], 4),
                    "auc_pr": round(honest["auc_pr"], 4),
                    "auc_roc_reading_test_labels": round(leaky["auc_roc"], 4),
                    "auc_pr_reading_test_labels": round(leaky["auc_pr"], 4),
                }
                print(json.dumps(row), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
