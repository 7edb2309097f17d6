"""Shared fixtures: seeding, the real-data folder, marker-based skipping."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

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
