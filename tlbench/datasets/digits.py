"""MNIST -> USPS digits as used by JDA: 2,000 MNIST and 1,800 USPS images, 16x16 grey pixels.

The transfer set of Long, Wang, Ding, Sun, Yu, "Transfer Feature Learning with Joint
Distribution Adaptation", ICCV 2013, read from ``<data_dir>/mnist_usps_jda/`` (``MNIST.mat``,
``USPS.mat``; see the ``SOURCE.md`` there). The files store ``label = digit + 1``; the task's
labels are the digits 0..9.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, MissingDataError
from ..registry import register_dataset
from ..task import TransferTask
from .common import mat_pair_task

FOLDER = "mnist_usps_jda"
FILES = {"mnist": "MNIST.mat", "usps": "USPS.mat"}
NUM_CLASSES = 10
N_FEATURES = 256  # 16 x 16 pixels, row-major
SIZE = 16
MNIST_FILE_FEATURES = (256, 784)  # a replacement MNIST file: 16 x 16 or MNIST's own 28 x 28
MAKE_MNIST_FILE = "experiments/deep/make_mnist_fullres.py"


@register_dataset(
    "mnist_usps",
    kind="tabular",
    domains=tuple(FILES),
    description="MNIST (2000) <-> USPS (1800) digits, 16x16 grey pixels as 256 features (JDA set)",
    paper="Long et al., Transfer Feature Learning with Joint Distribution Adaptation, ICCV 2013",
)
def mnist_usps(
    *,
    source: str = "mnist",
    target: str = "usps",
    data_dir: str | Path = "data",
    preprocess: str = "l2",
    image_size: int = SIZE,
    protocol: str = "transductive",
    test_size: float = 0.3,
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
    mnist_file: str | Path | None = None,
    pixel_scale: float = 1.0,
) -> TransferTask:
    """MNIST and USPS digits as 256-dim pixel vectors in [0, 1], labels 0..9.

    Parameters
    ----------
    source, target : {"mnist", "usps"}
        The two domains, either direction.
    data_dir : str or Path
        The folder that holds ``mnist_usps_jda/``.
    preprocess : str, default="l2"
        Applied per domain (see :data:`~tlbench.datasets.common.PREPROCESSORS`). ``l2``
        (the default, the JDA protocol) scales every image to unit Euclidean norm; 1-NN on
        it gives the JDA paper's NN column exactly (MNIST->USPS 65.94, USPS->MNIST 44.70).
        ``none`` keeps the raw pixels (1-NN: 64.44 / 35.85); ``l1``, ``zscore``,
        ``l1_zscore``, ``binary`` are also accepted.
    image_size : int, default=16
        Side of the images served, as ``image_size**2`` features: 16 keeps the stored pixels;
        another size resizes every image bilinearly before the preprocessing (28: the input
        LeNet was designed for, the size ADDA resized USPS to for its MNIST->USPS rows).
    protocol : {"transductive", "inductive"}, default="transductive"
        ``transductive`` (the JDA protocol) gives every target image unlabeled to ``fit`` and
        scores on them; ``inductive`` holds out a stratified ``test_size`` part of the target.
    test_size, target_labeled, seed
        See :mod:`tlbench.datasets.common`.
    mnist_file : str or Path, optional
        A ``.mat`` file (``fts`` of shape (n, 784) or (n, 256) in [0, 1], ``labels`` = digit
        + 1) read in place of the JDA set's 16x16 ``MNIST.mat``: e.g. MNIST digits at their
        own 28x28 resolution, written by ``experiments/deep/make_mnist_fullres.py``. Its
        images are resized to ``image_size`` like the others. Absolute, or relative to the
        working directory.
    pixel_scale : float, default=1.0
        Multiplies every pixel after the resize, before the preprocessing: 255 serves the
        range [0, 255] that ADDA's released code feeds its LeNet.

    Returns
    -------
    task : TransferTask

    References
    ----------
    M. Long, J. Wang, G. Ding, J. Sun, P. S. Yu. Transfer Feature Learning with Joint
    Distribution Adaptation. ICCV 2013.
    """
    size = int(image_size)
    if size < 4:
        raise ConfigError(f"dataset.image_size must be at least 4, got {image_size}")
    scale = float(pixel_scale) if isinstance(pixel_scale, int | float) else float("nan")
    if isinstance(pixel_scale, bool) or not (np.isfinite(scale) and scale > 0):
        raise ConfigError(f"dataset.pixel_scale must be a number > 0, got {pixel_scale!r}")
    paths = {}
    if mnist_file:
        path = Path(mnist_file).expanduser()
        if not path.is_file():
            raise MissingDataError(
                f"dataset.mnist_file {str(mnist_file)!r} not found (looked at {path.resolve()}); "
                f"write it with `python {MAKE_MNIST_FILE}`, or leave mnist_file unset for the "
                "stored 16x16 MNIST.mat"
            )
        paths["mnist"] = path

    def served(X: np.ndarray) -> np.ndarray:
        X = X if X.shape[1] == size * size else resize(X, size)
        return X if scale == 1.0 else X * scale

    # the stored labels are digit + 1; load_mat_domain's offset of 1 gives the digit
    return mat_pair_task(
        "mnist_usps",
        FOLDER,
        FILES,
        x_key="fts",
        n_features={"mnist": MNIST_FILE_FEATURES if paths else N_FEATURES, "usps": N_FEATURES},
        num_classes=NUM_CLASSES,
        source=source,
        target=target,
        data_dir=data_dir,
        preprocess=preprocess,
        protocol=protocol,
        test_size=test_size,
        target_labeled=target_labeled,
        seed=seed,
        transform=served,
        paths=paths,
    )


def resize(X: np.ndarray, size: int) -> np.ndarray:
    """Resize rows of square row-major images (16x16, 28x28, ...) to ``size x size``.

    Bilinear, flattened again; the side of the stored images is the root of the row length.
    """
    import torch  # only when resizing: the adapter itself needs numpy alone

    side = int(round(np.sqrt(X.shape[1])))
    if side * side != X.shape[1]:
        raise ValueError(f"rows of {X.shape[1]} pixels are not square images")
    img = torch.from_numpy(np.asarray(X, dtype=np.float64)).reshape(-1, 1, side, side)
    out = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear",
                                          align_corners=False)  # fmt: skip
    return out.reshape(len(X), size * size).numpy()
