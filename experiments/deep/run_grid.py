"""Run the deep tables of experiments/deep/README.md in one process (no per-run start-up cost).

    OMP_NUM_THREADS=1 TLBENCH_DATA_DIR=../shared/data .venv/bin/python \
        experiments/deep/run_grid.py {decaf,surf,amazon,digits} [--seeds 0 1 2]
    # a variant, e.g. DAN with the paper's learned kernel weights on MNIST -> USPS:
    ... run_grid.py digits --methods dan --label dan_learned --pairs mnist:usps \
        --set method.kernel_weights=learned --score-entropy

Each run is the same as ``python -m tlbench <overrides>`` (the runner's ``run``), written to
``outputs/deep/<study>/<method or --label>_<source>_<target>_seed<k>/result.json``; tabulate with
``python -m tlbench.report outputs/deep/<study>``. Hyperparameters are fixed in advance (the
values below); nothing is selected with target labels (``selection=none``, the last step is
kept).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from hydra import compose, initialize_config_dir

from tlbench import registry
from tlbench.runner import run

REPO = Path(__file__).resolve().parents[2]
METHODS = ("source_only_deep", "mmd", "dan")
COMMON = ["trainer.progress_bar=false", "selection=none"]

STUDIES = {
    "decaf": {
        "dataset": "office_caltech_decaf",
        "pairs": [("dslr", "webcam"), ("webcam", "dslr")],
        "overrides": [
            "method.backbone=mlp",
            "method.hidden=[512]",
            "method.bottleneck_dim=256",
            "method.dropout=0.5",
            "trainer.max_steps=500",
            "trainer.batch_size=32",
        ],
    },
    "surf": {
        "dataset": "office_caltech_surf",
        "pairs": [
            (s, t) for s, t in itertools.permutations(("caltech", "amazon", "webcam", "dslr"), 2)
        ],
        "overrides": [
            "method.backbone=mlp",
            "method.hidden=[256]",
            "method.bottleneck_dim=128",
            "method.dropout=0.5",
            "trainer.max_steps=500",
            "trainer.batch_size=32",
        ],
    },
    "amazon": {
        "dataset": "amazon_reviews",
        "pairs": list(itertools.permutations(("books", "dvd", "electronics", "kitchen"), 2)),
        "overrides": [
            "dataset.preprocess=binary",
            "method.backbone=mlp",
            "method.hidden=[50]",  # DANN's shallow network: one hidden layer of 50 units
            "method.bottleneck_dim=0",
            "trainer.max_steps=1000",
            "trainer.batch_size=64",
        ],
    },
    "digits": {
        "dataset": "mnist_usps",
        "pairs": [("mnist", "usps"), ("usps", "mnist")],
        "overrides": [
            "dataset.preprocess=none",
            "method.backbone=lenet",
            "method.input_shape=[1,16,16]",
            "trainer.max_steps=2000",
            "trainer.batch_size=64",
        ],
    },
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("study", choices=sorted(STUDIES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--out", default="outputs/deep")
    ap.add_argument("--pairs", nargs="+", help="only these source:target pairs")
    ap.add_argument("--label", help="row label (and folder prefix) of a variant, e.g. dan_learned")
    ap.add_argument("--set", nargs="+", default=[], help="extra overrides of a variant")
    ap.add_argument(
        "--score-entropy",
        action="store_true",
        help="record the target-entropy selection score (no target labels; the last step is "
        "still the one kept: the trainer evaluates once, at the end)",
    )
    args = ap.parse_args()
    study = STUDIES[args.study]
    out = REPO / args.out / args.study
    pairs = study["pairs"]
    if args.pairs:
        pairs = [tuple(p.split(":")) for p in args.pairs]
    extra = list(args.set)
    if args.label:
        extra.append(f"label={args.label}")
    common = list(COMMON)
    if args.score_entropy:
        common = ["trainer.progress_bar=false", "selection=entropy",
                  "trainer.selection=target_entropy", "trainer.eval_every=0"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        for seed, (source, target), method in itertools.product(args.seeds, pairs, args.methods):
            folder = out / f"{args.label or method}_{source}_{target}_seed{seed}"
            done = folder / "result.json"
            if done.exists() and json.loads(done.read_text()).get("status") == "ok":
                continue  # finished earlier: relaunching the script resumes the grid
            # a method without a target loss sees no target batch the trainer could score
            method_cls = registry.METHODS.get(method)
            scored = args.score_entropy and getattr(method_cls, "uses_target", True)
            overrides = [
                f"method={method}",
                f"dataset={study['dataset']}",
                f"dataset.source={source}",
                f"dataset.target={target}",
                f"seed={seed}",
                *(common if scored else COMMON),
                *study["overrides"],
                *extra,
            ]
            cfg = compose("config", overrides=overrides)
            record = run(cfg, folder, overrides)
            acc = record["metrics"].get("accuracy", float("nan"))
            print(json.dumps({"run": folder.name, "accuracy": acc, "fit_s": record["fit_seconds"]}))


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    main()
