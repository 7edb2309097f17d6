"""Dogs vs. Cats in the layout of the Keras transfer-learning lecture.

``<root>/train/{cats,dogs}/`` (1000 + 1000 Kaggle photos) and ``<root>/validation/{cats,dogs}/``
(400 + 400). ``../shared/data/dogs_vs_cats_small`` holds it; ``python -m tlbench.prepare
catsdogs --kaggle DIR OUT`` builds it from Kaggle's ``train/`` folder.

The task is transductive, as the domain-adaptation papers' benchmarks are: the labeled
training photos are the source; the validation photos are the target, given unlabeled to
``fit``, and the test set (their labels only the runner reads). Both folders come from one
distribution, so without a shift there is nothing to adapt to: ``dataset.target_shift``
corrupts the validation photos (:mod:`tlbench.datasets.shifts`) to make a real shift.
Parameter transfer (``finetune``) trains on the labeled photos, the source; the pretrained
network is its source knowledge. ``dataset.target_labeled=k`` keeps the labels of k
validation photos per class for the methods that use a few labeled target samples
(TrAdaBoost); they leave the test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, MissingDataError
from ..registry import register_dataset
from ..task import UNLABELED, Domain, TransferTask
from .common import labeled_indices
from .images import ImageFiles, scan_split

FOLDER = "dogs_vs_cats_small"


@register_dataset(
    "catsdogs",
    kind="image",
    domains=("train", "validation"),
    description="Kaggle Dogs vs. Cats, 1000+1000 training and 400+400 validation photos",
    paper="Elson et al., Asirra, CCS 2007; the Keras lecture's parameter-transfer example",
)
def catsdogs(
    *,
    data_dir: str | Path,
    folder: str = FOLDER,
    image_size: int = 150,
    limit_per_class: int | None = None,
    target_labeled: int = 0,
    seed: int = 0,
) -> TransferTask:
    """The Dogs-vs-Cats task: train photos -> validation photos.

    Parameters
    ----------
    data_dir : str or Path
        The benchmark data folder (``paths.data_dir``).
    folder : str, default="dogs_vs_cats_small"
        Its sub-folder holding ``train/<class>/`` and ``validation/<class>/``.
    image_size : int, default=150
        Side of the square images served to methods that read the images as tensors
        (methods with a pretrained backbone resize the same files to their own size).
    limit_per_class : int, optional
        Keep the first N files of each class in each split (quick runs and tests).
    target_labeled : int, default=0
        Validation photos per class that keep their label (seeded by ``seed``); they are
        training data and leave the test set.
    seed : int
        Seeds the choice of the labeled validation photos.

    Returns
    -------
    task : TransferTask
        ``kind="image"``, 2 classes (``cats`` = 0, ``dogs`` = 1), ``protocol="transductive"``.
    """
    root = Path(data_dir).expanduser() / folder
    if not root.is_dir():
        raise MissingDataError(
            f"image folder {root} not found. Set TLBENCH_DATA_DIR (or paths.data_dir) to the "
            f"folder that holds {folder}/, or build that layout from Kaggle's Dogs vs. Cats "
            f"train/ folder with: python -m tlbench.prepare catsdogs --kaggle <train dir> {root}"
        )
    if image_size < 8:
        raise ConfigError(f"dataset.image_size must be >= 8, got {image_size}")
    if isinstance(target_labeled, bool) or not isinstance(target_labeled, int | np.integer):
        raise ConfigError(
            f"dataset.target_labeled must be a count of photos per class, got {target_labeled!r}"
        )
    train_paths, train_y = scan_split(root, "train")
    classes = sorted({p.parent.name for p in train_paths})
    val_paths, val_y = scan_split(root, "validation", classes)
    train = ImageFiles(train_paths, train_y, image_size, root)
    val = ImageFiles(val_paths, val_y, image_size, root)
    if limit_per_class:
        train, val = (
            _first_per_class(train, limit_per_class),
            _first_per_class(val, limit_per_class),
        )
    lab = labeled_indices(val.labels, int(target_labeled), len(train), seed)
    y_target, test = None, np.arange(len(val))
    if len(lab):
        y_target = np.full(len(val), UNLABELED, dtype=np.int64)
        y_target[lab] = val.labels[lab]
        test = np.setdiff1d(test, lab)
    return TransferTask(
        source=Domain(train, train.labels, name="train"),
        target=Domain(val, y_target, name="validation"),
        test=Domain(val.subset(test), val.labels[test], name="validation"),
        kind="image",
        num_classes=len(classes),
        protocol="transductive",
        info={
            "root": str(root),
            "classes": classes,
            "n_train": len(train),
            "n_val": len(val),
            "target_labeled": int(target_labeled),
        },  # fmt: skip
    )


def _first_per_class(files: ImageFiles, k: int) -> ImageFiles:
    keep = np.concatenate([np.flatnonzero(files.labels == c)[:k] for c in np.unique(files.labels)])
    return files.take(np.sort(keep))  # a set of its own: its cache entry holds only these
