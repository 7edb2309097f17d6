"""A-SVM and regularized MTL on SURF and MNIST-USPS, k labeled target per class (issue 13).

    OMP_NUM_THREADS=1 TLBENCH_DATA_DIR=../shared/data .venv/bin/python \
        experiments/parameter/run_asvm_rmtl.py {surf,digits} [--seeds 0 1 2] [--k 1 3 5]
    .venv/bin/python experiments/parameter/run_asvm_rmtl.py {surf,digits} --table

Each run is the runner's ``run`` (what ``python -m tlbench`` does) on one source -> one target
task with ``dataset.target_labeled=k`` and ``selection=none``: every hyperparameter is the
method's default (C = 1, linear kernels, RMTL's mu = 1), fixed before the first run; no choice
is made on target labels. All rows use one classifier family, a linear SVM (libsvm, C = 1): the
baselines get ``method.estimator=linear_svm``; A-SVM adapts a linear source SVM with a linear
delta function; RMTL is a linear SVM on the multi-task kernel. Records go to
``outputs/multirun/parameter_asvm_rmtl_<study>/``, labelled ``<method>_k<k>``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from hydra import compose, initialize_config_dir

from tlbench.runner import run

REPO = Path(__file__).resolve().parents[2]
METHODS = ("source_only", "target_only", "source_and_target", "asvm", "rmtl")
BASELINES = ("source_only", "target_only", "source_and_target")
STUDIES = {
    "surf": ("office_caltech_surf", ("amazon", "caltech", "dslr", "webcam")),
    "digits": ("mnist_usps", ("mnist", "usps")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--table", action="store_true", help="print the tables of the records")
    args = parser.parse_args()
    dataset, domains = STUDIES[args.study]
    out = REPO / "outputs" / "multirun" / f"parameter_asvm_rmtl_{args.study}"
    if args.table:
        print(table(out, domains, args.k, args.methods))
        return
    for (s, t), k, seed in itertools.product(
        itertools.permutations(domains, 2), args.k, args.seeds
    ):
        for method in args.methods:
            overrides = [f"method={method}", f"dataset={dataset}", f"dataset.source={s}",
                         f"dataset.target={t}", f"dataset.target_labeled={k}", f"seed={seed}",
                         "selection=none", f"label={method}_k{k}"]  # fmt: skip
            if method in BASELINES:
                overrides.append("method.estimator=linear_svm")
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose(config_name="config", overrides=overrides)
            rec = run(cfg, out / f"{method}_k{k}_{s}_{t}_seed{seed}", overrides)
            acc = rec["metrics"].get("accuracy")
            acc = "" if acc is None else f"{100 * acc:.2f}"
            print(f"{method:18s} k={k} {s:>8s} -> {t:8s} seed {seed}: {rec['status']} {acc} "
                  f"({rec.get('fit_seconds') or 0:.1f} s)", flush=True)  # fmt: skip


def table(out: Path, domains: tuple[str, ...], ks: list[int], methods: list[str]) -> str:
    """Markdown: one row per method and k, one column per task (mean ± std over seeds), avg."""
    import json
    from collections import defaultdict

    import numpy as np

    acc: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for path in sorted(out.glob("*/result.json")):
        rec = json.loads(path.read_text())
        if rec["status"] == "ok":
            key = (rec["method"], rec["config"]["dataset"]["target_labeled"],
                   f"{rec['source'][0].upper()}→{rec['target'][0].upper()}")  # fmt: skip
            acc[key].append(100 * rec["metrics"]["accuracy"])
    tasks = [f"{s[0].upper()}→{t[0].upper()}" for s, t in itertools.permutations(domains, 2)]
    lines = ["| method | k | " + " | ".join(tasks) + " | avg |", "|---" * (len(tasks) + 3) + "|"]
    for k, m in itertools.product(ks, methods):
        runs = [acc.get((m, k, t), []) for t in tasks]
        cells = [f"{np.mean(v):.1f} ± {np.std(v):.1f}" if v else "—" for v in runs]
        avg = f"{np.mean([np.mean(v) for v in runs]):.1f}" if all(runs) else "—"
        lines.append(f"| {m} | {k} | " + " | ".join(cells) + f" | {avg} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
