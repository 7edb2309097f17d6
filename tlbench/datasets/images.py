"""Image folders: ``<split>/<class>/<file>`` layouts read lazily as a torch ``Dataset``.

:class:`ImageFiles` holds a list of files and labels; it decodes with Pillow, converts grey,
palette, CMYK and alpha images to RGB, and resizes to a square ``size`` (bilinear with
Pillow's antialiasing; Keras' ``flow_from_directory`` resizes the same way to ``target_size``
without keeping the aspect ratio). Items are float tensors ``(3, size, size)`` in [0, 1]
(Keras' ``rescale=1/255``). :meth:`ImageFiles.load_uint8` decodes everything once into one
``uint8`` array, which is what the parameter-transfer method trains from. Each file may carry
a corruption (:mod:`tlbench.datasets.shifts`), applied after the resize; the checksum that
keys the feature cache includes it.

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
from ..features import file_digest
from .shifts import Shift

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
    """Images on disk with integer labels, each optionally corrupted by a :class:`Shift`.

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
    shifts : sequence of Shift or None, optional
        The corruption of each file (``None``: none), applied after the resize
        (:mod:`tlbench.datasets.shifts`); default: no file is corrupted.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: Sequence[int],
        size: int = 150,
        root: str | Path | None = None,
        shifts: Sequence[Shift | None] | None = None,
    ) -> None:
        if len(paths) != len(labels):
            raise DataError(f"{len(paths)} image files but {len(labels)} labels")
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.size = int(size)
        self.root = None if root is None else Path(root)
        self.shifts = [None] * len(self.paths) if shifts is None else list(shifts)
        if len(self.shifts) != len(self.paths):
            raise DataError(f"{len(self.paths)} image files but {len(self.shifts)} shifts")
        #: ``(files, index)`` when these are ``files.subset(index)``: a cache of the whole set
        #: then serves the subset (a held-out split, the labeled photos, the test set)
        self.origin: tuple[ImageFiles, np.ndarray] | None = None
        self._checksum: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def _name(self, p: Path) -> Path:
        return p.relative_to(self.root) if self.root and p.is_relative_to(self.root) else p

    def _decode(self, i: int) -> np.ndarray:
        img = decode_image(self.paths[i], self.size)
        shift = self.shifts[i]
        return img if shift is None else shift.apply(img, self._name(self.paths[i]).as_posix())

    def __getitem__(self, i: int) -> torch.Tensor:
        img = self._decode(int(i))
        return torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0)

    def __repr__(self) -> str:
        shifts = sorted({str(s) for s in self.shifts if s is not None})
        extra = f", shifts={shifts}" if shifts else ""
        return f"ImageFiles(n={len(self)}, size={self.size}, root={str(self.root)!r}{extra})"

    def _new(self, index: np.ndarray | None = None, **changes: object) -> ImageFiles:
        idx = np.arange(len(self)) if index is None else np.asarray(index, dtype=int)
        parts = {
            "paths": [self.paths[i] for i in idx],
            "labels": self.labels[idx],
            "size": self.size,
            "root": self.root,
            "shifts": [self.shifts[i] for i in idx],
        }
        return ImageFiles(**{**parts, **changes})

    def take(self, index: Sequence[int] | np.ndarray) -> ImageFiles:
        """The files at ``index`` as a file set of their own (not a subset of this one)."""
        return self._new(np.asarray(index, dtype=int))

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageFiles:
        """The files at ``index`` (an ``ImageFiles`` again, so methods keep the file list)."""
        index = np.asarray(index, dtype=int)
        out = self._new(index)
        base, base_index = self.origin or (self, np.arange(len(self)))
        out.origin = (base, base_index[index])
        return out

    def with_size(self, size: int) -> ImageFiles:
        """The same files served at another size."""
        out = self._new(size=int(size))
        if self.origin is not None:
            out.origin = (self.origin[0].with_size(size), self.origin[1])
        return out

    def with_shift(self, shift: Shift | None) -> ImageFiles:
        """The same files, every one corrupted by ``shift`` (``None``: none)."""
        out = self._new(shifts=[shift] * len(self))
        if self.origin is not None:
            out.origin = (self.origin[0].with_shift(shift), self.origin[1])
        return out

    def concat(self, other: ImageFiles) -> ImageFiles:
        """These files followed by ``other``'s (served at this size; each keeps its shift)."""
        root = self.root if self.root == other.root else None
        return ImageFiles(self.paths + other.paths, np.concatenate([self.labels, other.labels]),
                          self.size, root, self.shifts + other.shifts)  # fmt: skip

    def load_uint8(self) -> np.ndarray:
        """Every image decoded, resized and corrupted, as one ``(n, 3, size, size)`` uint8 array."""
        out = np.empty((len(self), 3, self.size, self.size), dtype=np.uint8)
        for i in range(len(self)):
            out[i] = self._decode(i).transpose(2, 0, 1)
        return out

    def checksum(self) -> str:
        """SHA-256 of the (relative) file names, their labels, their shifts and their bytes."""
        if self._checksum is None:
            h = hashlib.sha256()
            for p, y, shift in zip(self.paths, self.labels, self.shifts, strict=True):
                h.update(f"{self._name(p).as_posix()}\0{int(y)}\0".encode())
                if shift is not None:  # an unshifted file adds nothing here
                    h.update(f"shift\0{shift.key()}\0".encode())
                h.update(file_digest(p).encode())  # memoised: a second set reads nothing
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
