"""Trainer overhead: tlbench's Trainer vs a bare PyTorch loop, and the cost of the MK-MMD term.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/benchmarks/trainer_overhead.py [--steps 300]
        [--gpu]  # also fp32 vs bf16 + channels-last for vgg16 and resnet50 on CUDA

Prints a Markdown table. Targets (issue 5): trainer within 10 % of the bare loop; a DAN step
(linear-time MK-MMD, 33 kernels, 2 layers) under 30 % more than a source-only step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tlbench.backbones import create_backbone
from tlbench.methods.deep import DeepNet
from tlbench.methods.feature.dan import DAN
from tlbench.task import Domain
from tlbench.trainer import Trainer


def make_data(shape, n=512, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    y = rng.integers(0, n_classes, n).astype(np.int64)
    return X, y


def make_model(backbone, shape, n_classes=10, seed=0):
    torch.manual_seed(seed)
    kw = {"hidden": (256,)} if backbone == "mlp" else {}
    net = create_backbone(backbone, num_classes=n_classes, in_shape=shape, **kw)
    return DeepNet(net, n_classes, 256)


def bare_loop(model, X, y, Xt, steps, batch, device, dtype=None, channels_last=False):
    """A hand-written loop: the same model, Adam, paired batches, one concatenated forward."""
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xs_t, ys_t = torch.from_numpy(X), torch.from_numpy(y)
    Xt_t = None if Xt is None else torch.from_numpy(Xt)
    g = torch.Generator().manual_seed(0)
    model.train()

    def step():
        i = torch.randint(0, len(X), (batch,), generator=g)
        x = Xs_t[i]
        if Xt_t is not None:
            x = torch.cat([x, Xt_t[torch.randint(0, len(Xt), (batch,), generator=g)]])
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = (
            torch.autocast(device.type, dtype=dtype)
            if dtype
            else torch.autocast("cpu", enabled=False)
        )
        with ctx:
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits[:batch].float(), ys_t[i].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):  # warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def trainer_rate(model, X, y, Xt, steps, batch, device="cpu", precision="fp32",
                 channels_last=False, extra=None):  # fmt: skip
    opts = dict(device=device, precision=precision, channels_last=channels_last, batch_size=batch,
                log_every=10**9, progress_bar=False)  # fmt: skip
    Trainer(max_steps=10, **opts).fit(
        model, Domain(X, y), None if Xt is None else Domain(Xt), extra_loss=extra
    )  # fmt: skip  (warm-up)
    if device != "cpu":
        torch.cuda.synchronize()
    t = time.perf_counter()
    Trainer(max_steps=steps, **opts).fit(model, Domain(X, y), None if Xt is None else Domain(Xt),
                                         extra_loss=extra)  # fmt: skip
    if device != "cpu":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--gpu", action="store_true")
    args = ap.parse_args()
    rows = []
    cpu = torch.device("cpu")
    for backbone, shape, batch in (("mlp", (256,), 64), ("lenet", (1, 16, 16), 64)):
        X, y = make_data(shape)
        Xt, _ = make_data(shape, seed=1)
        bare = bare_loop(make_model(backbone, shape), X, y, None, args.steps, batch, cpu)
        ours = trainer_rate(make_model(backbone, shape), X, y, None, args.steps, batch)
        rows.append((backbone, "cpu fp32", "source only", bare, ours))
        bare_p = bare_loop(make_model(backbone, shape), X, y, Xt, args.steps, batch, cpu)
        paired = trainer_rate(make_model(backbone, shape), X, y, Xt, args.steps, batch,
                              extra=lambda s, t: 0.0 * s.features.sum())  # fmt: skip
        rows.append((backbone, "cpu fp32", "paired, no transfer loss", bare_p, paired))
        dan = DAN()
        dan_rate = trainer_rate(make_model(backbone, shape), X, y, Xt, args.steps, batch,
                                extra=dan.transfer_loss)  # fmt: skip
        rows.append((backbone, "cpu fp32", "DAN (linear MK-MMD, 33 kernels, 2 layers)", bare_p,
                     dan_rate))  # fmt: skip
    if args.gpu and torch.cuda.is_available():
        dev = torch.device("cuda")
        for backbone in ("resnet50", "vgg16"):
            shape = (3, 224, 224)
            X, y = make_data(shape, n=256)
            for prec, cl in (("fp32", False), ("bf16", True)):
                dtype = torch.bfloat16 if prec == "bf16" else None
                bare = bare_loop(make_model(backbone, shape), X, y, None, 30, 32, dev, dtype, cl)
                ours = trainer_rate(make_model(backbone, shape), X, y, None, 30, 32, "cuda", prec,
                                    cl)  # fmt: skip
                label = prec + (" + channels-last" if cl else "")
                rows.append((backbone, f"cuda {label}", "source only, batch 32", bare, ours))
    print("| backbone | device | step | bare loop (steps/s) | tlbench Trainer (steps/s) | ratio |")
    print("|---|---|---|---:|---:|---:|")
    for b, d, what, bare, ours in rows:
        print(f"| {b} | {d} | {what} | {bare:.1f} | {ours:.1f} | {ours / bare:.2f} |")


if __name__ == "__main__":
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    main()
