"""The shared frozen-feature cache: what it buys, each against a baseline measured in this run.

1. The headline command ``python -m tlbench method=dan dataset=catsdogs``: a cold cache (a fresh
   cache folder: the photos are decoded and EfficientNet-Lite0 runs over them) vs a warm one.
2. DAN's training step with the frozen base's pooled features read from the cache vs the same
   network recomputing the frozen base on every batch (``train_blocks=null`` with the backbone
   frozen by ``backbone_lr_mult=0``).
3. ``finetune``'s stage 1 (the lecture's Flatten top, 8.2 M weights, on 150 px feature maps,
   batch 16, RMSprop) through the trainer vs a bare PyTorch loop over the same tensors (the
   limit).

    TLBENCH_DATA_DIR=../shared/data python experiments/benchmarks/frozen_features.py
    python experiments/benchmarks/frozen_features.py --skip-headline   # parts 2 and 3 only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def headline() -> list[tuple[str, float]]:
    env = {**os.environ, "TLBENCH_CACHE_DIR": tempfile.mkdtemp(prefix="tlbench_bench_cache_")}
    run_dir = tempfile.mkdtemp(prefix="tlbench_bench_run_")
    cmd = [sys.executable, "-m", "tlbench", "method=dan", "dataset=catsdogs",
           f"hydra.run.dir={run_dir}", "rerun=true"]  # fmt: skip
    rows = []
    for label in ("cold cache", "warm cache"):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
        rows.append((f"headline, {label}", time.perf_counter() - t0))
        acc = [line for line in out.stdout.splitlines() if line.startswith("accuracy")]
        print(f"  {label}: {acc[0] if acc else out.stdout[-300:]}", flush=True)
    return rows


def _photos(n_per_class: int):
    from tlbench.datasets.catsdogs import catsdogs

    data = os.environ.get("TLBENCH_DATA_DIR")
    if not data:
        return None
    task = catsdogs(data_dir=data, limit_per_class=n_per_class)
    return task.without_test()


def dan_steps() -> list[tuple[str, float]]:
    from tlbench.methods.feature.dan import DAN
    from tlbench.task import Domain
    from tlbench.trainer import Trainer

    task = _photos(64)
    if task is None:
        print("  (TLBENCH_DATA_DIR unset: DAN step timing skipped)")
        return []
    cache = tempfile.mkdtemp(prefix="tlbench_bench_dan_")
    common = dict(backbone="efficientnet_lite0", pretrained=True, image_size=224,
                  cache_dir=cache, random_state=0)  # fmt: skip
    rows = []
    for label, kw, steps in (
        ("DAN step, frozen base cached", {"train_blocks": 0}, 200),
        ("DAN step, frozen base recomputed (decode + base every batch)",
         {"backbone_lr_mult": 0.0}, 3),
    ):  # fmt: skip
        method = DAN(**common, **kw)
        # builds the network and fills the cache; the trainer's step loop alone is timed below
        method.fit(task, Trainer(max_steps=1, batch_size=32, seed=0, progress_bar=False))
        source = Domain(method._inputs(task.source.X), task.source.y)
        target = Domain(method._inputs(task.target.X))
        trainer = Trainer(max_steps=steps, batch_size=32, seed=0, progress_bar=False, lr=0.01,
                          optimizer="sgd")  # fmt: skip
        t0 = time.perf_counter()
        trainer.fit(method.model_, source, target, extra_loss=method.transfer_loss)
        rows.append((label, (time.perf_counter() - t0) / steps))
    return rows


def top_model_steps(steps: int = 100) -> list[tuple[str, float]]:
    from tlbench.methods.parameter.finetune import TopModel
    from tlbench.task import Domain
    from tlbench.trainer import Trainer

    rng = np.random.default_rng(0)
    feats = rng.random((2000, 1280, 5, 5), dtype=np.float32)  # EfficientNet-Lite0 maps at 150 px
    y = rng.integers(0, 2, size=2000)
    rows = []

    torch.manual_seed(0)
    top = TopModel((1280, 5, 5), 2)
    trainer = Trainer(max_steps=steps, batch_size=16, optimizer="rmsprop", lr=1e-3,
                      momentum=0.0, seed=0, progress_bar=False)  # fmt: skip
    t0 = time.perf_counter()
    trainer.fit(top, Domain(feats, y))
    rows.append(("top model step, trainer", (time.perf_counter() - t0) / steps))

    torch.manual_seed(0)
    top = TopModel((1280, 5, 5), 2)
    X, Y = torch.from_numpy(feats), torch.from_numpy(y)
    opt = torch.optim.RMSprop(top.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(2000, generator=g)
    top.train()
    t0 = time.perf_counter()
    for i in range(steps):
        idx = perm[(i * 16) % 1984 : (i * 16) % 1984 + 16]
        loss = torch.nn.functional.cross_entropy(top(X[idx]), Y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    rows.append(("top model step, bare PyTorch loop", (time.perf_counter() - t0) / steps))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-headline", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    groups = []
    if not args.skip_headline:
        groups.append(("headline command (wall seconds)", headline(), "s"))
    groups.append(("DAN training step", dan_steps(), "ms"))
    groups.append(("top-model stage", top_model_steps(), "ms"))
    for title, rows, unit in groups:
        if not rows:
            continue
        base = rows[0][1]
        print(f"\n{title}\n| case | {unit} | ratio to the first row |\n|---|---:|---:|")
        for label, value in rows:
            shown = value if unit == "s" else 1000 * value
            print(f"| {label} | {shown:.1f} | {value / base:.2f}x |")


if __name__ == "__main__":
    main()
