"""How much reading the test fold's true target atoms would lift the recursive clauses.

Not an evaluation protocol: a diagnostic for the gap to the recorded TreeBoostler runs
(README.md, "Why these numbers are not the recorded ones"). TreeBoostler's loader
(``datasets/get_datasets.py``, ``load``) adds ``recursion_<target>`` facts for every positive
of every fold, the test folds included, so its recursive tree tests can read the labels of a
test atom's neighbours at test time. Here the fitted model is given the same: its evidence
(the true target atoms recursive clauses read) becomes the training positives plus the test
positives; a clause never reads the atom it predicts (``Z != X``).

Usage: TLBENCH_DATA_DIR=... python experiments/relational/leak_check.py [source:target ...]
[--negatives closed_world|treeboostler] [--methods scratch,mapped+revision]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from run_pairs import METHODS  # experiments/relational/run_pairs.py (run from this folder)

from tlbench.datasets.relational import relational
from tlbench.methods.relational.learner import positives
from tlbench.methods.relational.metrics import relational_metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="*", default=["twitter:yeast", "yeast:twitter"])
    ap.add_argument("--negatives", default="closed_world")
    ap.add_argument("--methods", default="scratch,mapped+revision")
    args = ap.parse_args()
    data_dir = os.environ.get("TLBENCH_DATA_DIR", "data")
    for pair in args.pairs:
        source, target = pair.split(":")
        first = relational(source=source, target=target, data_dir=data_dir)
        for fold in range(first.info["target_domain"]["n_folds"]):
            task = relational(
                source=source,
                target=target,
                data_dir=data_dir,
                test_fold=fold,
                negatives=args.negatives,
            )
            test_pos = positives(task.test.X, task.test.y)
            for name in args.methods.split(","):
                method = METHODS[name]().fit(task.without_test())
                honest = relational_metrics(task.test.y, method.predict_proba(task.test.X)[:, 1])
                method.model_.evidence = method.model_.evidence + test_pos
                leaky = relational_metrics(task.test.y, method.predict_proba(task.test.X)[:, 1])
                row = {
                    "pair": f"{source}->{target}",
                    "negatives": args.negatives,
                    "method": name,
                    "test_fold": fold,
                    "auc_roc": round(honest["auc_roc"], 4),
                    "auc_pr": round(honest["auc_pr"], 4),
                    "auc_roc_reading_test_labels": round(leaky["auc_roc"], 4),
                    "auc_pr_reading_test_labels": round(leaky["auc_pr"], 4),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
