"""Dataset adapters and their shared helpers on tiny synthetic files (no real data needed)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from tlbench.datasets.amazon import amazon_reviews
from tlbench.datasets.coil import coil20
from tlbench.datasets.common import (
    labeled_indices,
    make_task,
    preprocess,
    split_target,
)
from tlbench.datasets.digits import mnist_usps, resize
from tlbench.datasets.office_caltech import office_caltech_decaf, office_caltech_surf
from tlbench.errors import ConfigError, DataError, IncompatibleTaskError, MissingDataError
from tlbench.registry import DATASETS

# ----------------------------------------------------------------------------- fake data dirs


def _write_mat(path, x_key, n, d, n_classes, rng, first=1, **override):
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = (np.arange(n) % n_classes + first).astype(np.uint8)[:, None]
    data = {x_key: rng.integers(0, 5, (n, d)).astype(np.float64), "labels": labels}
    data.update(override)
    scipy.io.savemat(path, data)


def _fake_surf(root, rng, **override):
    folder = root / "office_caltech10_surf"
    names = ("amazon_SURF_L10", "Caltech10_SURF_L10", "dslr_SURF_L10", "webcam_SURF_L10")
    for i, name in enumerate(names):
        _write_mat(folder / f"{name}.mat", "fts", 30 + i, 800, 10, rng, **override)
    return folder


def _write_svmlight(path, n, rng, labels=(-1, 1), max_index=4999):
    lines = []
    for i in range(n):
        idx = sorted(set(rng.integers(0, max_index + 1, 5).tolist()) | {0})
        feats = " ".join(f"{j}:{int(rng.integers(1, 4))}" for j in idx)
        lines.append(f"{labels[i % len(labels)]} {feats}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def _fake_amazon(root, rng):
    folder = root / "amazon_reviews_dann5000"
    for dom in ("books", "dvd", "electronics", "kitchen"):
        _write_svmlight(folder / f"{dom}_train.svmlight.gz", 20, rng)
        _write_svmlight(folder / f"{dom}_test.svmlight.gz", 30, rng)
    return folder


# ----------------------------------------------------------------------------- adapters


def test_all_adapters_registered_with_their_domains():
    expected = {
        "office_caltech_surf": ("amazon", "caltech", "dslr", "webcam"),
        "office_caltech_decaf": ("dslr", "webcam"),
        "mnist_usps": ("mnist", "usps"),
        "coil20": ("coil1", "coil2"),
        "amazon_reviews": ("books", "dvd", "electronics", "kitchen"),
    }
    for name, domains in expected.items():
        entry = DATASETS.entry(name)
        assert entry.meta["kind"] == "tabular"
        assert entry.meta["domains"] == domains


@pytest.mark.parametrize(
    "adapter, folder, filename",
    [
        (office_caltech_surf, "office_caltech10_surf", "Caltech10_SURF_L10.mat"),
        (office_caltech_decaf, "office_caltech10_decaf6", "webcam_decaf.mat"),
        (mnist_usps, "mnist_usps_jda", "MNIST.mat"),
        (coil20, "coil20_jda", "COIL1.mat"),
        (amazon_reviews, "amazon_reviews_dann5000", "books_train.svmlight.gz"),
    ],
)
def test_missing_file_names_file_and_folder(tmp_path, adapter, folder, filename):
    with pytest.raises(MissingDataError) as err:
        adapter(data_dir=tmp_path)
    msg = str(err.value)
    assert filename in msg and folder in msg and "TLBENCH_DATA_DIR" in msg


def test_fake_surf_task_loads(tmp_path):
    _fake_surf(tmp_path, np.random.default_rng(0))
    task = office_caltech_surf(data_dir=tmp_path, source="dslr", target="webcam")
    assert task.source.X.shape == (32, 800) and len(task.test) == 33
    assert task.protocol == "transductive" and task.target.y is None
    assert set(task.source.y.tolist()) == set(range(10))  # file labels 1..10 -> 0..9
    assert task.info["preprocess"] == "l1_zscore"


def test_corrupt_mat_is_data_error(tmp_path):
    folder = _fake_surf(tmp_path, np.random.default_rng(0))
    (folder / "amazon_SURF_L10.mat").write_bytes(b"this is not a MATLAB file" * 20)
    with pytest.raises(DataError, match="amazon_SURF_L10.mat"):
        office_caltech_surf(data_dir=tmp_path)


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"fts": np.zeros((5, 800))}, r"shape \(5, 800\); expected \(\d+, 800\)"),
        ({"fts": np.zeros((30, 799))}, r"expected \(30, 800\)"),
        ({"labels": np.full((30, 1), 11, dtype=np.uint8)}, "expected 1..10"),
        ({"labels": np.zeros((30, 1), dtype=np.uint8)}, "labels below 1"),
        ({"labels": np.full((30, 1), 1.5)}, "must be integers"),
    ],
)
def test_malformed_mat_is_data_error(tmp_path, override, expected):
    rng = np.random.default_rng(0)
    _fake_surf(tmp_path, rng)
    _write_mat(
        tmp_path / "office_caltech10_surf" / "Caltech10_SURF_L10.mat",
        "fts",
        30,
        800,
        10,
        rng,
        **override,
    )
    with pytest.raises(DataError, match=expected) as err:
        office_caltech_surf(data_dir=tmp_path)
    assert "Caltech10_SURF_L10.mat" in str(err.value)


def test_mat_with_wrong_keys_is_data_error(tmp_path):
    rng = np.random.default_rng(0)
    _write_mat(tmp_path / "mnist_usps_jda" / "MNIST.mat", "X", 20, 256, 10, rng)
    _write_mat(tmp_path / "mnist_usps_jda" / "USPS.mat", "fts", 20, 256, 10, rng)
    with pytest.raises(DataError, match=r"MNIST.mat lacks variable\(s\) \['fts'\]"):
        mnist_usps(data_dir=tmp_path)


def test_digit_labels_are_file_labels_minus_one(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("MNIST", "USPS"):
        _write_mat(tmp_path / "mnist_usps_jda" / f"{name}.mat", "fts", 20, 256, 10, rng)
    task = mnist_usps(data_dir=tmp_path)
    assert task.source.y.tolist() == [i % 10 for i in range(20)]
    np.testing.assert_allclose(np.linalg.norm(task.source.X, axis=1), 1.0)  # default l2


def test_digits_resize_keeps_the_images_and_rejects_tiny_sizes(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("MNIST", "USPS"):
        _write_mat(tmp_path / "mnist_usps_jda" / f"{name}.mat", "fts", 20, 256, 10, rng)
    raw = mnist_usps(data_dir=tmp_path, preprocess="none")
    big = mnist_usps(data_dir=tmp_path, preprocess="none", image_size=28)
    assert big.source.X.shape == (20, 784) and big.target.X.shape == (20, 784)
    # bilinear upsampling stays within the pixel range and keeps each image's mean brightness
    assert big.source.X.min() >= raw.source.X.min() and big.source.X.max() <= raw.source.X.max()
    np.testing.assert_allclose(big.source.X.mean(1), raw.source.X.mean(1), atol=0.05)
    flat = np.zeros((1, 256))
    flat[0, 16 * 8 : 16 * 9] = 1.0  # one horizontal line stays a horizontal band
    img = resize(flat, 32).reshape(32, 32)
    assert img[:, 0].argmax() in (16, 17) and np.ptp(img[16]) < 1e-12
    with pytest.raises(ConfigError, match="image_size"):
        mnist_usps(data_dir=tmp_path, image_size=2)


def test_mnist_file_replaces_the_stored_mnist_at_its_own_resolution(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("MNIST", "USPS"):
        _write_mat(tmp_path / "mnist_usps_jda" / f"{name}.mat", "fts", 20, 256, 10, rng)
    full = tmp_path / "MNIST28.mat"
    img = np.zeros((30, 28, 28))
    img[:, 4:24, 13:15] = 1.0  # a thin upright stroke: a "1" in MNIST's 20x20 box
    labels = (np.arange(30) % 10 + 1).astype(np.uint8)[:, None]
    scipy.io.savemat(full, {"fts": img.reshape(30, 784), "labels": labels})
    stored = mnist_usps(data_dir=tmp_path, preprocess="none", image_size=32)
    task = mnist_usps(data_dir=tmp_path, preprocess="none", image_size=32, mnist_file=str(full))
    assert task.source.X.shape == (30, 1024)
    assert task.source.y.tolist() == [i % 10 for i in range(30)]
    np.testing.assert_array_equal(task.target.X, stored.target.X)  # USPS is still the stored file
    big = task.source.X[0].reshape(32, 32)
    assert big[16, 15:17].min() > 0.5 and big[16, :10].max() == 0.0  # the stroke stays centred
    assert str(full) in task.info["files"]
    small = mnist_usps(data_dir=tmp_path, preprocess="none", mnist_file=full)  # 28 -> stored 16
    assert small.source.X.shape == (30, 256)
    with pytest.raises(MissingDataError, match="make_mnist_fullres.py"):
        mnist_usps(data_dir=tmp_path, mnist_file=str(tmp_path / "absent.mat"))
    _write_mat(tmp_path / "usps784" / "mnist_usps_jda" / "USPS.mat", "fts", 20, 784, 10, rng)
    with pytest.raises(DataError, match=r"USPS.mat.*expected \(20, 256\)"):  # USPS stays 16x16
        mnist_usps(data_dir=tmp_path / "usps784", mnist_file=str(full))
    scipy.io.savemat(full, {"fts": np.zeros((30, 700)), "labels": labels})
    with pytest.raises(DataError, match=r"expected \(30, 256 or 784\)"):
        mnist_usps(data_dir=tmp_path, mnist_file=str(full))
    with pytest.raises(ValueError, match="not square"):
        resize(np.zeros((2, 700)), 16)


def test_pixel_scale_multiplies_the_served_pixels_after_the_resize(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("MNIST", "USPS"):
        _write_mat(tmp_path / "mnist_usps_jda" / f"{name}.mat", "fts", 20, 256, 10, rng)
    base = mnist_usps(data_dir=tmp_path, preprocess="none", image_size=32)
    big = mnist_usps(data_dir=tmp_path, preprocess="none", image_size=32, pixel_scale=255)
    np.testing.assert_allclose(big.source.X, 255 * base.source.X)
    np.testing.assert_allclose(big.test.X, 255 * base.test.X)
    l2 = mnist_usps(data_dir=tmp_path, pixel_scale=255)  # a per-image norm undoes the scale
    np.testing.assert_allclose(l2.source.X, mnist_usps(data_dir=tmp_path).source.X)
    for bad in (0, -1.0, float("nan"), True, "255"):
        with pytest.raises(ConfigError, match="pixel_scale must be a number > 0"):
            mnist_usps(data_dir=tmp_path, pixel_scale=bad)


def test_fake_amazon_protocols_and_sparsity(tmp_path):
    _fake_amazon(tmp_path, np.random.default_rng(0))
    task = amazon_reviews(data_dir=tmp_path, source="kitchen", target="books")
    assert task.protocol == "inductive"
    assert (len(task.source), len(task.target), len(task.test)) == (20, 20, 30)
    assert sp.issparse(task.source.X) and task.source.X.shape == (20, 5000)
    assert sp.issparse(task.test.X) and task.target.y is None
    assert set(task.source.y.tolist()) == {0, 1}  # -1/+1 -> 0/1
    trans = amazon_reviews(data_dir=tmp_path, protocol="transductive")
    assert (len(trans.target), len(trans.test)) == (30, 30)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x00\xffgarbage", "cannot read"),  # not gzip at all
        (gzip.compress(b"1 0:1 2:x\n"), "cannot read"),  # unparsable value
        (gzip.compress(b"1 0:1 6000:2\n"), "cannot read"),  # index beyond 5000 features
        (gzip.compress(b"2 0:1 3:2\n0 1:1\n"), r"labels must be -1 or \+1"),
        (gzip.compress(b""), "no reviews"),
    ],
)
def test_corrupt_svmlight_is_data_error(tmp_path, content, expected):
    folder = _fake_amazon(tmp_path, np.random.default_rng(0))
    (folder / "books_train.svmlight.gz").write_bytes(content)
    with pytest.raises(DataError, match=expected) as err:
        amazon_reviews(data_dir=tmp_path)
    assert "books_train.svmlight.gz" in str(err.value)


@pytest.mark.parametrize(
    "adapter, valid",
    [
        (office_caltech_surf, "amazon, caltech, dslr, webcam"),
        (office_caltech_decaf, "dslr, webcam"),
        (mnist_usps, "mnist, usps"),
        (coil20, "coil1, coil2"),
        (amazon_reviews, "books, dvd, electronics, kitchen"),
    ],
)
def test_unknown_domain_lists_valid_ones(tmp_path, adapter, valid):
    with pytest.raises(ConfigError, match=f"valid domains: {valid}"):
        adapter(data_dir=tmp_path, target="nowhere")
    first = valid.split(", ")[0]
    with pytest.raises(IncompatibleTaskError, match="both"):  # a skipped sweep cell
        adapter(data_dir=tmp_path, source=first, target=first)


def test_amazon_checks_options_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="protocol"):
        amazon_reviews(data_dir=tmp_path, protocol="semi")
    with pytest.raises(ConfigError, match="preprocess"):
        amazon_reviews(data_dir=tmp_path, preprocess="tfidf2")


# ----------------------------------------------------------------------------- common.py


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_split_target_inductive_is_stratified_partition():
    y = _labels([40, 30, 20, 10])
    train, test = split_target(y, "inductive", 0.3, seed=0)
    assert len(test) == 30 and len(train) == 70
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).tolist() == list(range(100))
    assert np.bincount(y[test]).tolist() == [12, 9, 6, 3]
    again, _ = split_target(y, "inductive", 0.3, seed=0)
    other, _ = split_target(y, "inductive", 0.3, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_split_target_transductive_and_bad_values():
    y = _labels([5, 5])
    train, test = split_target(y, "transductive", 0.3, seed=0)
    assert np.array_equal(train, test) and len(train) == 10
    with pytest.raises(ConfigError, match="protocol"):
        split_target(y, "semi", 0.3, seed=0)
    with pytest.raises(ConfigError, match="test_size"):
        split_target(y, "inductive", 1.5, seed=0)


def test_labeled_indices_int_float_all():
    y = _labels([10, 8, 6])
    k = labeled_indices(y, 2, n_source=50, seed=0)
    assert np.bincount(y[k]).tolist() == [2, 2, 2]
    frac = labeled_indices(y, 0.2, n_source=50, seed=0)  # 20 % of the source size = 10 samples
    assert len(frac) == 10 and set(y[frac].tolist()) == {0, 1, 2}
    assert labeled_indices(y, "all", n_source=50, seed=0).tolist() == list(range(24))
    assert labeled_indices(y, 0, n_source=50, seed=0).size == 0
    assert labeled_indices(y, None, n_source=50, seed=0).size == 0
    with pytest.raises(ConfigError, match="per class"):
        labeled_indices(y, 7, n_source=50, seed=0)
    with pytest.raises(ConfigError, match="target_labeled"):
        labeled_indices(y, "some", n_source=50, seed=0)


def test_make_task_target_labeled_transductive_scores_the_rest():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), _labels([10, 10, 10])
    task = make_task(
        source=(X, y, "s"), target=(X, y, "t"), num_classes=3, target_labeled=2, seed=0
    )
    assert task.target.n_labeled == 6 and len(task.test) == 24
    lab = np.flatnonzero(task.target.y != -1)
    assert np.array_equal(task.target.y[lab], y[lab])
    with pytest.raises(ConfigError, match="inductive"):
        make_task(source=(X, y, "s"), target=(X, y, "t"), num_classes=3, target_labeled="all")
    full = make_task(
        source=(X, y, "s"),
        target=(X, y, "t"),
        num_classes=3,
        protocol="inductive",
        target_labeled="all",
    )
    assert full.target.n_labeled == len(full.target) == 21 and len(full.test) == 9


def test_l1_zscore_equals_manual_formula():
    rng = np.random.default_rng(0)
    fit = rng.integers(0, 9, (12, 5)).astype(float)
    fit[:, 3] = 0  # a constant feature: its std stays 1
    X = rng.integers(0, 9, (4, 5)).astype(float)
    rows_fit = fit / fit.sum(axis=1, keepdims=True)
    mean, std = rows_fit.mean(axis=0), rows_fit.std(axis=0, ddof=0)
    std[std == 0] = 1.0
    expected = (X / X.sum(axis=1, keepdims=True) - mean) / std
    (out,) = preprocess("l1_zscore", fit, X)
    np.testing.assert_allclose(out, expected)
    (same,) = preprocess("l1_zscore", sp.csr_matrix(fit), sp.csr_matrix(X))
    np.testing.assert_allclose(same, expected)


@pytest.mark.parametrize("name", ["none", "l1", "l2", "binary"])
def test_row_preprocessing_keeps_sparse_input_sparse(name):
    dense = np.array([[1.0, 0.0, 3.0], [0.0, 0.0, 0.0], [2.0, 2.0, 0.0]])
    X = sp.csr_matrix(dense)
    (out,) = preprocess(name, X, X)
    assert sp.issparse(out) and out.dtype == np.float64
    (ref,) = preprocess(name, dense, dense)
    np.testing.assert_allclose(out.toarray(), ref)


def test_l2_rows_have_unit_norm_and_zero_rows_stay_zero():
    X = sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0]]))
    (out,) = preprocess("l2", X, X)
    np.testing.assert_allclose(out.toarray(), [[0.6, 0.8], [0.0, 0.0]])


def test_unknown_preprocess_is_config_error():
    with pytest.raises(ConfigError, match="l1_zscore"):
        preprocess("tfidf2", np.ones((2, 2)), np.ones((2, 2)))
