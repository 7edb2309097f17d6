"""Shared fixtures: seeding, the real-data folder, marker-based skipping."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def _data_dir() -> Path | None:
    value = os.environ.get("TLBENCH_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    return path if path.is_dir() else None


def pytest_collection_modifyitems(config, items):
    data = _data_dir()
    cuda = torch.cuda.is_available()
    for item in items:
        if "realdata" in item.keywords and data is None:
            item.add_marker(pytest.mark.skip(reason="TLBENCH_DATA_DIR is not set to the data"))
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="no CUDA device"))


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (code under test may use the global generator)
    torch.manual_seed(0)


@pytest.fixture
def data_dir() -> Path:
    """The real benchmark data folder (tests using it are marked ``realdata``)."""
    path = _data_dir()
    if path is None:
        pytest.skip("TLBENCH_DATA_DIR is not set to the data")
    return path


# --------------------------------------------------------------------------- photos


def photo(path: Path, label: int, rng: np.random.Generator, mode: str = "RGB") -> None:
    """A photo-like stand-in: cats reddish, dogs bluish, random size and texture."""
    h, w = rng.integers(24, 60, size=2)
    img = rng.integers(0, 90, size=(h, w, 3)).astype(np.uint8)
    img[..., 0 if label == 0 else 2] += 150
    im = Image.fromarray(img)
    if mode != "RGB":
        im = im.convert(mode)
    im.save(path, format="JPEG" if path.suffix == ".jpg" else None)


def photo_layout(root: Path, n_train: int = 12, n_val: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("validation", n_val)):
        for label, cls in enumerate(("cats", "dogs")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                photo(d / f"{cls[:-1]}.{i}.jpg", label, rng)
    return root
