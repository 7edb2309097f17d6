"""Shared fixtures: seeding, the real-data folder, marker-based skipping."""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"

# Derived data of this test session go to a folder of its own, never the checkout's
# outputs/cache: a cache entry left by an earlier session (or written by a study running beside
# the tests) would turn an expected miss into a hit. Subprocesses inherit it.
os.environ["TLBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="tlbench-test-cache-")


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


# --------------------------------------------------------------------------- the runner, watched


@pytest.fixture
def spy_run(monkeypatch):
    """``spy_run(out, overrides, corrupt_test=None)``: :func:`tlbench.runner.run`, watched.

    Returns ``(seen, record)``: ``seen["task"]`` is the task the dataset returned (after
    ``corrupt_test(y)`` replaced its test labels), ``seen["fit"]`` every task given to a
    ``fit`` (the reported model's and the selection scorer's), ``seen["predict"]`` and
    ``seen["proba"]`` the outputs of ``predict`` / ``predict_proba`` on the test samples.
    """
    from hydra import compose, initialize_config_dir

    import tlbench.runner as runner

    build_task, build_method = runner.build_task, runner.build_method

    def call(out, overrides, corrupt_test=None):
        seen = {"fit": [], "predict": [], "proba": [], "task": None}

        def spy_task(cfg):
            task = build_task(cfg)
            if corrupt_test is not None:
                task = replace(task, test=replace(task.test, y=corrupt_test(task.test.y)))
            seen["task"] = task
            return task

        def spy_method(cfg):
            method = build_method(cfg)
            fit, predict = method.fit, method.predict
            proba = getattr(method, "predict_proba", None)

            def spy_fit(task, trainer=None):
                seen["fit"].append(task)
                return fit(task, trainer)

            def spy_predict(X):
                out = predict(X)
                if X is seen["task"].test.X:
                    seen["predict"].append(out)
                return out

            def spy_proba(X):
                out = proba(X)
                if X is seen["task"].test.X:
                    seen["proba"].append(out)
                return out

            method.fit, method.predict = spy_fit, spy_predict  # instance attributes win
            if proba is not None:
                method.predict_proba = spy_proba
            return method

        monkeypatch.setattr(runner, "build_task", spy_task)
        monkeypatch.setattr(runner, "build_method", spy_method)
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose(config_name="config", overrides=list(overrides))
        record = runner.run(cfg, out)
        monkeypatch.setattr(runner, "build_task", build_task)
        monkeypatch.setattr(runner, "build_method", build_method)
        assert record["status"] == "ok", record["reason"]
        return seen, record

    return call
