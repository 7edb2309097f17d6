"""Recursive RDN-Boost prediction: rows deduplicated by one integer key against numpy's records.

    TLBENCH_DATA_DIR=../shared/data OMP_NUM_THREADS=1 \
        python experiments/benchmarks/recursion_predict.py [--examples 1000 4000] \
        [--negatives closed_world]

The case that needed it: RDN-Boost with ``recursion=True`` on NELL Sports (``teamplayssport``),
trained on target fold 0 (the scarce protocol). Its trees join the target's known atoms with
the teams' relations (``recursion_teamplayssport(C, B), teamplaysagainstteam(A, C)``), so a
projected tree walk deduplicates millions of grounding rows per round of iterative
classification. ``np.unique(rows, axis=0)`` sorts them as opaque records; the walk now packs the
columns that can differ into one integer per row and sorts that
(:func:`tlbench.methods.relational.rdn_boost._first_rows`). Both orders are the same, so the
two predictions must be equal; the table gives the time of ``predict_proba`` on the first
``n`` test atoms (a subset: iterative classification then reads only their predictions).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tlbench.datasets.relational import relational
from tlbench.methods.relational import rdn_boost
from tlbench.methods.relational.rdn_boost import RDNBoost


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, nargs="+", default=[1000, 4000])
    ap.add_argument("--negatives", default="closed_world", help="closed_world | treeboostler")
    args = ap.parse_args()
    task = relational(
        source="nell_finances",
        target="nell_sports",
        data_dir=os.environ.get("TLBENCH_DATA_DIR", "data"),
        negatives=args.negatives,
        train_fold=0,
    )
    t0 = time.perf_counter()
    model = RDNBoost(recursion=True).fit(task.without_test())
    print(f"fit: {time.perf_counter() - t0:.1f} s, test atoms: {len(task.test.X)}")
    packed = rdn_boost._first_rows
    print("\n| test atoms | np.unique(axis=0) s | packed key s | ratio |")
    print("|---|---|---|---|")
    for n in args.examples:
        data = task.test.X.subset(np.arange(min(n, len(task.test.X))))
        times, preds = [], []
        for first_rows in (lambda rows, cols: None, packed):  # None: numpy's records
            rdn_boost._first_rows = first_rows
            t0 = time.perf_counter()
            preds.append(model.predict_proba(data)[:, 1])
            times.append(time.perf_counter() - t0)
        rdn_boost._first_rows = packed
        np.testing.assert_array_equal(preds[0], preds[1])
        print(f"| {len(data)} | {times[0]:.2f} | {times[1]:.2f} | {times[0] / times[1]:.1f}x |")


if __name__ == "__main__":
    main()
