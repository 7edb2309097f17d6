"""The data contract rejects malformed tasks with one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tlbench import DataError, Domain, RelationalData, TransferTask


def _task(Xs=None, Xt=None, ys=None, yt=None, **kw):
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(10, 3)) if Xs is None else Xs
    Xt = rng.normal(size=(8, 3)) if Xt is None else Xt
    ys = np.arange(Xs.shape[0]) % 2 if ys is None else ys
    yt = np.arange(Xt.shape[0]) % 2 if yt is None else yt
    return TransferTask(
        source=Domain(Xs, ys, name="s"),
        target=Domain(Xt, name="t"),
        test=Domain(Xt, yt, name="t"),
        kind=kw.pop("kind", "tabular"),
        num_classes=kw.pop("num_classes", 2),
    )


def test_valid_task_and_views():
    task = _task()
    assert len(task.source) == 10 and task.target.n_labeled == 0
    assert task.without_test().test is None
    assert task.feature_shape == (3,)


def test_mismatched_feature_counts():
    with pytest.raises(DataError, match=r"differ in shape: source \(3,\), target \(4,\)"):
        _task(Xt=np.zeros((8, 4)))


@pytest.mark.parametrize(("value", "word"), [(np.nan, "1 NaN"), (np.inf, "1 infinite")])
def test_non_finite_features(value, word):
    X = np.zeros((10, 3))
    X[2, 1] = value
    with pytest.raises(DataError, match=f"source domain 's' has {word}"):
        _task(Xs=X)


def test_labels_out_of_range():
    with pytest.raises(DataError, match=r"out of range: \[5\]"):
        _task(ys=np.array([0, 1, 5, 0, 1, 0, 1, 0, 1, 0]))


def test_label_shape_and_dtype():
    with pytest.raises(DataError, match="labels of shape"):
        _task(ys=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match="non-integer"):
        _task(ys=np.zeros(10))


def test_empty_domain():
    with pytest.raises(DataError, match="target domain 't' is empty"):
        _task(Xt=np.zeros((0, 3)), yt=np.zeros(0, dtype=int))


def test_wrong_dimensions_and_kind():
    with pytest.raises(DataError, match="2-D array"):
        _task(Xs=np.zeros((10, 3, 1)))
    with pytest.raises(DataError, match="unknown task kind"):
        _task(kind="video")
    with pytest.raises(DataError, match="num_classes"):
        _task(num_classes=1)


def test_sparse_features_are_checked():
    X = sp.random(10, 3, density=0.5, format="csr", random_state=0)
    X.data[0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        _task(Xs=X)


def test_partly_labeled_domain():
    dom = Domain(np.zeros((4, 2)), np.array([0, -1, 1, -1]))
    assert dom.n_labeled == 2
    assert len(dom.labeled()) == 2 and dom.labeled().y.tolist() == [0, 1]
    assert dom.unlabeled().y is None


def test_relational_data_checks_arity_and_target():
    preds = {"p": ("a", "b"), "t": ("a",)}
    data = RelationalData(preds, {"p": (("x", "y"),)}, "t", (("x",), ("z",)), name="w")
    assert data.entities == {"a": ("x", "z"), "b": ("y",)}
    assert len(data.subset(np.array([1]))) == 1
    with pytest.raises(DataError, match="has 1 arguments"):
        RelationalData(preds, {"p": (("x",),)}, "t", ())
    with pytest.raises(DataError, match="target predicate 'q'"):
        RelationalData(preds, {}, "q", ())
