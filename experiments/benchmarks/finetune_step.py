"""Stage 2 of ``finetune`` on the CPU: contiguous vs channels-last memory, per training step.

    .venv/bin/python experiments/benchmarks/finetune_step.py [--steps 20] [--threads 2]

Times the tlbench Trainer on the fine-tuning stage as ``finetune`` builds it (pretrained base,
the last ``train_blocks`` trainable, batch-norm frozen, augmented 16-image batches, SGD) and the
frozen base's forward pass that extracts the bottleneck features, each in the default
contiguous layout and with ``hardware.channels_last=true``, in the same process. Random pixels:
the cost does not depend on the photos. Prints a Markdown table; the ratio is contiguous time
over channels-last time (above 1: channels-last is faster).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from tlbench.backbones import create_backbone
from tlbench.methods.parameter.finetune import AugmentedImages, FineTuneNet, TopModel, _MapOnly
from tlbench.task import Domain
from tlbench.trainer import Trainer

CASES = [("efficientnet_lite0", 150, 3), ("efficientnet_lite0", 224, 3), ("cifar_resnet20", 32, 1)]


def build(backbone: str, size: int, train_blocks: int) -> tuple[FineTuneNet, FineTuneNet]:
    torch.manual_seed(0)
    pretrained = backbone == "efficientnet_lite0"  # the CIFAR weights live in ../shared
    bb = create_backbone(backbone, num_classes=2, in_shape=(3, size, size), pretrained=pretrained)
    n = len(bb.conv_blocks())
    bb.conv_base_only()
    base = FineTuneNet(bb, TopModel((1, 1, 1), 2), n, bb.input_mean, bb.input_std)
    with torch.no_grad():
        fmap = bb(torch.zeros(1, 3, size, size))
    top = TopModel(tuple(fmap.shape[1:]), 2, pool="avg")
    net = FineTuneNet(copy.deepcopy(bb), top, n - train_blocks, bb.input_mean, bb.input_std)
    return base, net


def time_case(backbone: str, size: int, train_blocks: int, steps: int, channels_last: bool):
    base, net = build(backbone, size, train_blocks)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (64, 3, size, size), dtype=np.uint8))
    y = np.tile([0, 1], 32)
    data = Domain(AugmentedImages(images, 0.2, 0.2, True), y, name="bench")
    kw = dict(seed=0, progress_bar=False, channels_last=channels_last, batch_size=16,
              optimizer="sgd", lr=1e-3, schedule="constant", log_every=10**9)  # fmt: skip
    Trainer(max_steps=2, **kw).fit(copy.deepcopy(net), data, params=net.trainable_groups(1.0))
    t0 = time.perf_counter()
    Trainer(max_steps=steps, **kw).fit(net, data, params=net.trainable_groups(1.0))
    step_s = (time.perf_counter() - t0) / steps
    t = Trainer(seed=0, progress_bar=False, channels_last=channels_last)
    plain = AugmentedImages(images)
    t.forward_layers(_MapOnly(base), plain, ["features"], batch_size=64)
    t0 = time.perf_counter()
    t.forward_layers(_MapOnly(base), plain, ["features"], batch_size=64)
    extract_s = (time.perf_counter() - t0) / len(images)
    return step_s, extract_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.steps} steps of 16 images\n")
    print(
        "| backbone | size | trained blocks | what | contiguous, ms | channels-last, ms | ratio |"
    )
    print("|---|---:|---:|---|---:|---:|---:|")
    for backbone, size, blocks in CASES:
        c = time_case(backbone, size, blocks, args.steps, False)
        cl = time_case(backbone, size, blocks, args.steps, True)
        for i, what in enumerate(("stage 2 step (16 images)", "feature extraction, per image")):
            print(f"| {backbone} | {size} | {blocks} | {what} | {1e3 * c[i]:.1f} | "
                  f"{1e3 * cl[i]:.1f} | {c[i] / cl[i]:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
