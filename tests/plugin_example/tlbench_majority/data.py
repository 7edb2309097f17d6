"""XOR toy dataset, registered from outside tlbench."""

from __future__ import annotations

import numpy as np

from tlbench import register_dataset
from tlbench.datasets.common import make_task


@register_dataset("toy_xor", kind="tabular", domains=("source", "target"), description="XOR")
def toy_xor(*, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(n, 2)), rng.normal(0.5, 1, size=(n, 2))
    ys = ((Xs[:, 0] > 0) ^ (Xs[:, 1] > 0)).astype(int)
    yt = ((Xt[:, 0] > 0) ^ (Xt[:, 1] > 0)).astype(int)
    return make_task(
        source=(Xs, ys, "source"),
        target=(Xt, yt, "target"),
        num_classes=2,
        protocol="inductive",
        seed=seed,
    )
