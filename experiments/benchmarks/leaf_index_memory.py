"""Relational tree prediction: the projected tree walk against the plain one, time and memory.

    TLBENCH_DATA_DIR=../shared/data OMP_NUM_THREADS=1 \
        python experiments/benchmarks/leaf_index_memory.py [--examples 1024 4096 24804] \
        [--memory-gb 16]

The case that needed it: Yeast -> Twitter under the recorded TreeBoostler runs' protocol (one
target fold trains, ``dataset.negatives=treeboostler``): TreeBoostler's mapped Yeast trees with
re-fitted leaves (``revision="weights"``) test only the account's relations, chains such as
``follows(A, C), follows(C, D)``, and score the 24804 atoms of Twitter fold 1. For the first
``n`` test atoms, each walk routes them through every tree
(:meth:`~tlbench.methods.relational.rdn_boost.RelationalRegressionTree.leaf_index`):
``project=False`` carries every grounding of a path (the walk before the fix); the default
semi-joins and projects out what the rest of the path never reads, 1024 atoms at a time. Peak
memory is what ``tracemalloc`` sees (numpy reports its arrays to it); the process's address
space is capped at ``--memory-gb`` so that a walk that does not fit fails with MemoryError
instead of the machine's OOM killer. Where both walks finish, they must reach the same leaves.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

from tlbench.datasets.relational import relational
from tlbench.methods.relational.rdn_boost import Grounder
from tlbench.methods.relational.treeboostler import TreeBoostler


def _measure(trees, data, project: bool) -> tuple[list[np.ndarray] | None, float, float]:
    grounder = Grounder(data)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        leaves = [tree.leaf_index(grounder, len(data), project=project) for tree in trees]
    except MemoryError:
        leaves = None
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return leaves, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, nargs="+", default=[1024, 4096, 24804])
    ap.add_argument("--memory-gb", type=float, default=16.0)
    args = ap.parse_args()
    cap = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    task = relational(
        source="yeast",
        target="twitter",
        data_dir=os.environ.get("TLBENCH_DATA_DIR", "data"),
        negatives="treeboostler",
        train_fold=0,
    )
    method = TreeBoostler(revision="weights").fit(task.without_test())
    trees, test = method.model_.trees, task.test.X
    print(f"{len(trees)} mapped trees, {len(test)} test atoms, {args.memory_gb:g} GB cap\n")
    print("| atoms | plain s | plain MiB | projected s | projected MiB | time, memory ratio |")
    print("|---|---|---|---|---|---|")
    for n in args.examples:
        data = test.subset(np.arange(min(n, len(test))))
        new, t_new, m_new = _measure(trees, data, project=True)
        old, t_old, m_old = _measure(trees, data, project=False)
        if old is None:
            print(f"| {len(data)} | out of memory | | {t_new:.2f} | {m_new:.0f} | |")
            continue
        assert all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))
        ratio = f"{t_old / t_new:.0f}x, {m_old / max(m_new, 1e-9):.0f}x"
        print(f"| {len(data)} | {t_old:.2f} | {m_old:.0f} | {t_new:.2f} | {m_new:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
