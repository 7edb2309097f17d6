"""Dogs vs. Cats in the layout of the Keras transfer-learning lecture.

``<root>/train/{cats,dogs}/`` (1000 + 1000 Kaggle photos) and ``<root>/validation/{cats,dogs}/``
(400 + 400). ``../shared/data/dogs_vs_cats_small`` holds it; ``python -m tlbench.prepare
catsdogs --kaggle DIR OUT`` builds it from Kaggle's ``train/`` folder.

Parameter transfer has one data domain: the source knowledge is a pretrained network. The task
therefore carries the labeled training images both as ``source`` (what the from-scratch
baselines train on) and as the labeled ``target`` (what fine-tuning trains on); ``test`` is the
validation folder, which only the runner reads (the lecture also reports its accuracy there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, MissingDataError
from ..registry import register_dataset
from ..task import Domain, TransferTask
from .images import ImageFiles, scan_split

FOLDER = "dogs_vs_cats_small"


@register_dataset(
    "catsdogs",
    kind="image",
    domains=("train",),
    description="Kaggle Dogs vs. Cats, 1000+1000 training and 400+400 validation photos",
    paper="Elson et al., Asirra, CCS 2007; the Keras lecture's parameter-transfer example",
)
def catsdogs(
    *,
    data_dir: str | Path,
    folder: str = FOLDER,
    image_size: int = 150,
    limit_per_class: int | None = None,
    seed: int = 0,
) -> TransferTask:
    """The Dogs-vs-Cats task: train on ``train/``, score on ``validation/``.

    Parameters
    ----------
    data_dir : str or Path
        The benchmark data folder (``paths.data_dir``).
    folder : str, default="dogs_vs_cats_small"
        Its sub-folder holding ``train/<class>/`` and ``validation/<class>/``.
    image_size : int, default=150
        Side of the square images served to methods that read the images as tensors
        (fine-tuning chooses its own size from the same files).
    limit_per_class : int, optional
        Keep the first N files of each class in each split (quick runs and tests).
    seed : int
        Unused (the split is fixed by the folders); kept for the common dataset signature.

    Returns
    -------
    task : TransferTask
        ``kind="image"``, 2 classes (``cats`` = 0, ``dogs`` = 1), ``protocol="inductive"``.
    """
    del seed
    root = Path(data_dir).expanduser() / folder
    if not root.is_dir():
        raise MissingDataError(
            f"image folder {root} not found. Set TLBENCH_DATA_DIR (or paths.data_dir) to the "
            f"folder that holds {folder}/, or build that layout from Kaggle's Dogs vs. Cats "
            f"train/ folder with: python -m tlbench.prepare catsdogs --kaggle <train dir> {root}"
        )
    if image_size < 8:
        raise ConfigError(f"dataset.image_size must be >= 8, got {image_size}")
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
    source = Domain(train, train.labels, name="train")
    return TransferTask(
        source=source,
        target=source,
        test=Domain(val, val.labels, name="validation"),
        kind="image",
        num_classes=len(classes),
        protocol="inductive",
        info={"root": str(root), "classes": classes, "n_train": len(train), "n_val": len(val)},
    )


def _first_per_class(files: ImageFiles, k: int) -> ImageFiles:
    keep = np.concatenate([np.flatnonzero(files.labels == c)[:k] for c in np.unique(files.labels)])
    return files.subset(np.sort(keep))
