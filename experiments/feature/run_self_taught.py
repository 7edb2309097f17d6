"""Self-taught learning next to the baselines, k labeled target samples per class, in one process.

    OMP_NUM_THREADS=2 TLBENCH_DATA_DIR=../shared/data .venv/bin/python \
        experiments/feature/run_self_taught.py {digits,catsdogs} [--ks 1 3 5 10] [--seeds 0 1 2]
    python -m tlbench.report outputs/multirun/self_taught_<study>

Each run is ``python -m tlbench <overrides>`` (the runner's ``run``) with ``selection=none``,
``dataset.target_labeled=k`` and every method's classifier set to ``linear_svm`` (libsvm, C = 1);
``self_taught`` keeps its defaults (fixed before any run: 512 bases, beta = 0.2 on L2-normalised
samples, bases learned on the source with its labels dropped, the classifier on the labeled
target only). Nothing is chosen on target labels. Runs share one process, so ``self_taught``
learns its bases once per task and seed (in-memory cache) and reuses them for every k. Records
go to ``outputs/multirun/self_taught_<study>/``; the script ends with a Markdown table (accuracy
%, mean ± std over the seeds) per task.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from tlbench.runner import run

REPO = Path(__file__).resolve().parents[2]
METHODS = ("self_taught", "target_only", "source_only", "source_and_target")
STUDIES = {
    "digits": [["dataset=mnist_usps", "dataset.source=mnist", "dataset.target=usps"],
               ["dataset=mnist_usps", "dataset.source=usps", "dataset.target=mnist"]],
    "catsdogs": [["dataset=catsdogs"]],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every run")
    args = parser.parse_args()
    out = REPO / "outputs" / "multirun" / f"self_taught_{args.study}"
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    diag: dict[tuple[str, str], list[dict]] = defaultdict(list)
    start = time.perf_counter()
    for task in STUDIES[args.study]:
        for seed, k, method in itertools.product(args.seeds, args.ks, args.methods):
            overrides = [f"method={method}", *task, f"dataset.target_labeled={k}",
                         f"seed={seed}", "selection=none", "method.estimator=linear_svm",
                         *args.extra]  # fmt: skip
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose(config_name="config", overrides=overrides)
            name = "_".join(o.split("=")[1] for o in task)
            t0 = time.perf_counter()
            rec = run(cfg, out / f"{method}_{name}_k{k}_seed{seed}", overrides)
            label = f"{rec.get('source')} -> {rec.get('target')}"
            a = rec["metrics"].get("accuracy")
            if a is not None:
                acc[(label, method, k)].append(100 * a)
            if method == "self_taught" and rec.get("diagnostics"):
                diag[(label, "self_taught")].append(rec["diagnostics"])
            print(f"{method:18s} {label:24s} k={k:<3d} seed {seed}: {rec['status']} "
                  f"{'' if a is None else f'{100 * a:.2f}'} ({time.perf_counter() - t0:.1f} s)",
                  flush=True)  # fmt: skip
    print(f"\ntotal {time.perf_counter() - start:.0f} s\n")
    for label in dict.fromkeys(key[0] for key in acc):
        print(f"**{label}** (accuracy %, mean ± std over seeds {args.seeds})\n")
        print("| method | " + " | ".join(f"k = {k}" for k in args.ks) + " |")
        print("|---|" + "---|" * len(args.ks))
        for method in args.methods:
            cells = []
            for k in args.ks:
                v = acc.get((label, method, k), [])
                cells.append(f"{np.mean(v):.2f} ± {np.std(v):.2f}" if v else "-")
            print(f"| {method} | " + " | ".join(cells) + " |")
        runs = diag.get((label, "self_taught"), [])
        if runs:
            fresh = [d["dictionary_seconds"] for d in runs if not d["dictionary_cached"]]
            print(f"\nself_taught: {runs[0]['n_components']} bases, dictionary fit "
                  f"{np.mean(fresh):.1f} s (mean of {len(fresh)} fits), reconstruction error "
                  f"{np.mean([d['reconstruction_error'] for d in runs]):.3f} (unlabeled), "
                  f"{np.mean([d['reconstruction_error_train'] for d in runs]):.3f} (labeled "
                  f"target), non-zeros per code {np.mean([d['nonzeros'] for d in runs]):.1f} / "
                  f"{np.mean([d['nonzeros_train'] for d in runs]):.1f}, unused bases "
                  f"{np.mean([d['unused_bases'] for d in runs]):.0f}, convergence warnings "
                  f"{np.mean([d['convergence_warnings'] for d in runs]):.0f} a run\n")  # fmt: skip


if __name__ == "__main__":
    main()
