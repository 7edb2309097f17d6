"""The cost of the adversarial players: DANN, domain confusion and ADDA against source_only_deep.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/adversarial_overhead.py \
        [--steps 200] [--repeats 3] [--device cpu]

Every row trains the same network (LeNet on 32x32 digits, no bottleneck, batch 64 + 64, the
digits study's) through the one trainer on random data. Steps per second are the extra
``--steps`` steps of a ``2 * steps`` fit over a ``steps`` fit (so the fixed cost of a fit, its
set-up and diagnostics, cancels), the fastest of ``--repeats`` fits each; the ratio compares
with ``source_only_deep`` in the same run. ``source_only_deep (target in forward)`` runs the
target batch through the network unused, the forward every transfer method pays for. ADDA's
row keeps its pre-training steps fixed, so its extra steps are all adversarial ones (the target
encoder's forward and backward and two discriminator passes).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from tlbench.methods.feature.adda import ADDA
from tlbench.methods.feature.dann import DANN
from tlbench.methods.feature.domain_confusion import DomainConfusion
from tlbench.methods.feature.source_only_deep import SourceOnlyDeep
from tlbench.task import Domain, TransferTask
from tlbench.trainer import Trainer

NET = dict(backbone="lenet", input_shape=[1, 32, 32], bottleneck_dim=0, random_state=0)


def task(n: int = 512) -> TransferTask:
    rng = np.random.default_rng(0)
    Xs, Xt = (rng.random((n, 1024), dtype=np.float32) for _ in range(2))
    ys = rng.integers(0, 10, n)
    return TransferTask(Domain(Xs, ys, name="s"), Domain(Xt, name="t"), None, "tabular", 10,
                        "transductive")  # fmt: skip


def fit_seconds(make, steps: int, device: str, repeats: int) -> float:
    """The fastest of ``repeats`` fits of ``steps`` steps (wall time of ``fit``)."""
    best = float("inf")
    for _ in range(repeats):
        method = make()
        trainer = Trainer(max_steps=steps, batch_size=64, device=device, progress_bar=False,
                          log_every=steps)  # fmt: skip
        t0 = time.perf_counter()
        method.fit(task(), trainer)
        best = min(best, time.perf_counter() - t0)
    return best


def steps_per_second(make, steps: int, device: str, repeats: int) -> float:
    """Steps per second of training alone: ``steps`` over the time a fit of ``2 steps`` takes
    beyond a fit of ``steps`` (the fixed cost of a fit, its set-up and diagnostics, cancels)."""
    extra = fit_seconds(make, 2 * steps, device, repeats) - fit_seconds(
        make, steps, device, repeats
    )
    return steps / extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # random labels: the collapse warning is expected
    s, d, r = args.steps, args.device, args.repeats
    rows = {
        "source_only_deep": lambda: SourceOnlyDeep(**NET),
        "source_only_deep (target in forward)": lambda: SourceOnlyDeep(forward_target=True, **NET),
        "dann": lambda: DANN(discriminator_hidden=[500, 500], **NET),
        "domain_confusion": lambda: DomainConfusion(**NET),
        # pre-training is a fixed part of the fit: the added steps are all adversarial
        "adda (adversarial step)": lambda: ADDA(pretrain_steps=s // 2, **NET),
    }
    fit_seconds(rows["source_only_deep"], s, d, 1)  # warm-up: the first fit pays for the set-up
    rates = {name: steps_per_second(make, s, d, r) for name, make in rows.items()}
    base = rates["source_only_deep"]
    print(f"LeNet 32x32, batch 64 + 64, {s} steps, device {d}, best of {r}\n")
    print("| method | steps/s | time per step vs source_only_deep |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {base / rate:.2f}x |")


if __name__ == "__main__":
    main()
