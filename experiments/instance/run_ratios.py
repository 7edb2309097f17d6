"""KLIEP and uLSIF next to KMM on every table KMM has (issue 13), in one process.

    OMP_NUM_THREADS=1 TLBENCH_DATA_DIR=../shared/data .venv/bin/python \
        experiments/instance/run_ratios.py {surf,digits,amazon} [--seeds 0 1 2]
    python -m tlbench.report outputs/multirun/instance_ratios_<study>

Each run is ``python -m tlbench <overrides>`` (the runner's ``run``) with the overrides of the KMM
tables in ``experiments/instance/README.md`` (``selection=none``, the methods' defaults: no
hyperparameter is chosen on target labels; KLIEP and uLSIF choose their widths by their own
cross-validation on unlabeled data), written to ``outputs/multirun/instance_ratios_<study>/``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from hydra import compose, initialize_config_dir

from tlbench.runner import run

REPO = Path(__file__).resolve().parents[2]
METHODS = ("kliep", "ulsif", "kmm", "source_only")
STUDIES = {
    "surf": ("office_caltech_surf", ("amazon", "caltech", "dslr", "webcam"), []),
    "digits": ("mnist_usps", ("mnist", "usps"), []),
    "amazon": ("amazon_reviews", ("books", "dvd", "electronics", "kitchen"),
               ["dataset.preprocess=l2"]),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    args = parser.parse_args()
    dataset, domains, extra = STUDIES[args.study]
    out = REPO / "outputs" / "multirun" / f"instance_ratios_{args.study}"
    for s, t in itertools.permutations(domains, 2):
        for method, seed in itertools.product(args.methods, args.seeds):
            task = [f"dataset={dataset}", f"dataset.source={s}", f"dataset.target={t}"]
            overrides = [f"method={method}", *task, f"seed={seed}", "selection=none", *extra]
            with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
                cfg = compose(config_name="config", overrides=overrides)
            rec = run(cfg, out / f"{method}_{s}_{t}_seed{seed}", overrides)
            acc = rec["metrics"].get("accuracy")
            print(f"{method:12s} {s:>12s} -> {t:12s} seed {seed}: {rec['status']} "
                  f"{'' if acc is None else f'{100 * acc:.2f}'}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
