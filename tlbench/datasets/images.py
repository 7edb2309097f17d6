"""Image folders: ``<split>/<class>/<file>`` layouts read lazily as a torch ``Dataset``.

:class:`ImageFiles` holds a list of files and labels; it decodes with Pillow, converts grey,
palette, CMYK and alpha images to RGB, and resizes to a square ``size`` (bilinear with
Pillow's antialiasing; Keras' ``flow_from_directory`` resizes the same way to ``target_size``
without keeping the aspect ratio). Items are float tensors ``(3, size, size)`` in [0, 1]
(Keras' ``rescale=1/255``). :meth:`ImageFiles.load_uint8` decodes everything once into one
``uint8`` array, which is what the parameter-transfer method trains from.

A file Pillow cannot decode stops the run with a :class:`~tlbench.errors.DataError` naming it;
files that are not images (by extension) are ignored when the folder is scanned, and counted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, MissingDataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def decode_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read one image as an ``(H, W, 3)`` uint8 RGB array, resized to ``size x size`` if given.

    Raises
    ------
    DataError
        The file is missing, truncated or not an image Pillow can decode.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later
            if im.mode != "RGB":  # L, P, CMYK, RGBA, I;16 ...
                im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"cannot decode image {path}: {exc}; remove or replace the file "
            "(python -m tlbench.prepare skips such files)"
        ) from exc


class ImageFiles(torch.utils.data.Dataset):
    """Images on disk with integer labels.

    Parameters
    ----------
    paths : sequence of str or Path
        The image files.
    labels : sequence of int
        One label per file.
    size : int, default=150
        Side of the square images served by ``__getitem__``.
    root : str or Path, optional
        Paths are recorded relative to it in :meth:`checksum` (so a moved copy keeps its key).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int],
        size: int = 150,
        root: str | Path | None = None,
    ) -> None:
        if len(paths) != len(labels):
            raise DataError(f"{len(paths)} image files but {len(labels)} labels")
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.size = int(size)
        self.root = None if root is None else Path(root)
        self._checksum: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = decode_image(self.paths[int(i)], self.size)
        return torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0)

    def __repr__(self) -> str:
        return f"ImageFiles(n={len(self)}, size={self.size}, root={str(self.root)!r})"

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageFiles:
        """The files at ``index`` (an ``ImageFiles`` again, so methods keep the file list)."""
        index = np.asarray(index, dtype=int)
        return ImageFiles([self.paths[i] for i in index], self.labels[index], self.size, self.root)

    def with_size(self, size: int) -> ImageFiles:
        """The same files served at another size."""
        return ImageFiles(self.paths, self.labels, size, self.root)

    def load_uint8(self) -> np.ndarray:
        """Every image decoded and resized, as one ``(n, 3, size, size)`` uint8 array."""
        out = np.empty((len(self), 3, self.size, self.size), dtype=np.uint8)
        for i, p in enumerate(self.paths):
            out[i] = decode_image(p, self.size).transpose(2, 0, 1)
        return out

    def checksum(self) -> str:
        """SHA-256 of the (relative) file names, their labels and their bytes."""
        if self._checksum is None:
            h = hashlib.sha256()
            for p, y in zip(self.paths, self.labels, strict=True):
                name = p.relative_to(self.root) if self.root and p.is_relative_to(self.root) else p
                h.update(f"{name.as_posix()}\0{int(y)}\0".encode())
                h.update(hashlib.sha256(p.read_bytes()).digest())
            self._checksum = h.hexdigest()
        return self._checksum


def scan_split(root: Path, split: str, classes: Sequence[str] | None = None) -> tuple[list, list]:
    """Files and labels of ``root/split/<class>/``; classes sorted by name (``cats`` = 0).

    Raises
    ------
    MissingDataError
        The split folder or a class folder is missing, or a class folder holds no image.
    """
    base = root / split
    if not base.is_dir():
        raise MissingDataError(
            f"image folder {base} not found: expected {root}/{split}/<class>/<image files>"
            " (build it with python -m tlbench.prepare)"
        )
    found = sorted(p.name for p in base.iterdir() if p.is_dir())
    if classes is None:
        classes = found
    missing = [c for c in classes if c not in found]
    if missing or len(classes) < 2:
        raise MissingDataError(
            f"{base} must hold one folder per class {list(classes) or '(at least two)'}; "
            f"missing {missing or 'classes'} (found {found})"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        files = sorted((base / cls).iterdir(), key=_natural_key)
        images = [f for f in files if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        ignored = [f.name for f in files if f.is_file() and f not in images]
        if ignored:
            log.warning("%s/%s: ignored %d non-image file(s): %s", split, cls, len(ignored),
                        ", ".join(ignored[:5]))  # fmt: skip
        if not images:
            raise MissingDataError(f"class folder {base / cls} holds no image files")
        paths += images
        labels += [label] * len(images)
    return paths, labels


def _natural_key(path: Path) -> tuple:
    # cat.2.jpg before cat.10.jpg: the Kaggle ids in numeric order
    parts = path.name.split(".")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)
