"""The common contract every registered method must keep (tlbench's sklearn test_common)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from tlbench import IncompatibleTaskError
from tlbench.registry import METHODS
from tlbench.task import TransferTask

TOY = {
    "tabular": [
        ("toy_shift", {"n_source": 120, "n_target": 120, "target_labeled": 3}),
        (
            "toy_shift",
            {
                "n_source": 120,
                "n_target": 120,
                "n_classes": 3,
                "target_labeled": 3,
                "shift": "translation",
            },
        ),
    ],
    "image": [("toy_images", {"n_source": 48, "n_target": 48, "target_labeled": 3})],
    "relational": [("toy_relational", {"n_entities": 20})],
}


def _cases():
    for entry in METHODS:
        for kind in sorted(entry.obj.supports):
            for dataset, options in TOY.get(kind, []):
                yield pytest.param(
                    entry.name, dataset, options, id=f"{entry.name}-{dataset}-{len(options)}"
                )


def _task(dataset: str, options: dict, seed: int = 0) -> TransferTask:
    from tlbench.registry import DATASETS

    return DATASETS.get(dataset)(seed=seed, **options)


# Options for methods whose defaults need files a test machine lacks (ImageNet VGG16 weights)
# or take minutes (the lecture's 50 + 50 epochs).
QUICK = {
    "finetune": {
        "backbone": "cifar_resnet20",
        "pretrained": False,
        "image_size": 16,
        "top": {"hidden": 8},
        "bottleneck": {"epochs": 2, "batch_size": 4},
        "finetune": {"epochs": 1, "batch_size": 4},
    }
}


def _trainer():
    """Fifty Adam steps: enough to check the contract (``Trainer()`` is the CLI's 1000)."""
    from tlbench.trainer import Trainer

    return Trainer(max_steps=50, optimizer="adam", lr=1e-3, weight_decay=0.0,
                   schedule="constant", progress_bar=False)  # fmt: skip


def _method(name: str):
    cls = METHODS.get(name)
    params = {"random_state": 0} if "random_state" in cls().get_params() else {}
    return cls(**params, **QUICK.get(name, {}))


def test_every_method_has_a_case():
    covered = {p.values[0] for p in _cases()}
    assert covered == set(METHODS.names())


@pytest.mark.parametrize(("name", "dataset", "options"), list(_cases()))
def test_contract(name, dataset, options):
    cls = METHODS.get(name)
    assert cls.family in {"baseline", "instance", "feature", "parameter", "relational"}
    assert cls.supports and cls.supports <= {"tabular", "image", "relational"}

    method = _method(name)
    params = method.get_params()
    assert clone(method).get_params() == params  # the constructor only stores its arguments
    assert type(method)(**params).get_params() == params

    task = _task(dataset, options)
    with pytest.raises(NotFittedError):
        method.predict(task.test.X)

    fit_task = task.without_test()  # what the runner passes (checked by the runner test below)
    assert method.fit(fit_task, _trainer()) is method

    pred = method.predict(task.test.X)
    assert pred.shape == (len(task.test),)
    assert set(np.unique(pred)) <= set(range(task.num_classes))

    again = _method(name).fit(_task(dataset, options).without_test(), _trainer())
    again = again.predict(task.test.X)
    np.testing.assert_array_equal(pred, again)  # deterministic with a seed

    if hasattr(method, "predict_proba"):
        try:
            proba = method.predict_proba(task.test.X)
        except AttributeError:
            proba = None  # e.g. an estimator without probabilities
        if proba is not None:
            assert proba.shape[0] == len(task.test)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", [e.name for e in METHODS if e.obj.needs_target_labels])
def test_needs_target_labels_refuses_unlabeled_target(name):
    kind = sorted(METHODS.get(name).supports)[0]
    dataset, options = TOY[kind][0]
    task = _task(dataset, options)
    task = replace(task, target=task.target.unlabeled())
    assert task.target.n_labeled == 0
    with pytest.raises(IncompatibleTaskError, match="target"):
        _method(name).fit(task.without_test())


@pytest.mark.parametrize("name", METHODS.names())
def test_unsupported_kind_is_refused(name):
    kinds = {"tabular", "image", "relational"} - METHODS.get(name).supports
    for kind in sorted(kinds):
        dataset, options = TOY[kind][0]
        with pytest.raises(IncompatibleTaskError, match="supports"):
            _method(name).fit(_task(dataset, options).without_test())


@pytest.mark.parametrize("name", [e.name for e in METHODS if "tabular" in e.obj.supports])
def test_sparse_tabular_input(name):
    import scipy.sparse as sp

    task = _task("toy_shift", {"n_source": 80, "n_target": 80, "target_labeled": 3})

    def sparse(dom):
        return replace(dom, X=sp.csr_matrix(dom.X))

    task = replace(
        task, source=sparse(task.source), target=sparse(task.target), test=sparse(task.test)
    )
    pred = _method(name).fit(task.without_test(), _trainer()).predict(task.test.X)
    assert pred.shape == (len(task.test),)


# --------------------------------------------------------------------------- the runner


QUICK_RUN = {
    "tradaboost": ["method.n_estimators=5"],
    "jda": ["method.n_components=4", "method.n_iter=3"],
}


def _rows(X) -> set:
    return {tuple(np.round(r, 12)) for r in np.asarray(X)}


@pytest.mark.parametrize("protocol", ["inductive", "transductive"])
@pytest.mark.parametrize("method", ["source_only", "kmm", "tradaboost", "jda"])
def test_runner_never_shows_the_test_labels_to_fit(spy_run, tmp_path, method, protocol):
    # fails if any fit (the reported one or the selection's held-out one) gets the test set,
    # test samples beyond the protocol's, or target labels beyond the declared 3 per class;
    # or if the test labels change what is predicted
    overrides = [f"method={method}", f"dataset.protocol={protocol}", "dataset.n_source=100",
                 "dataset.n_target=100", "dataset.target_labeled=3", "dataset.shift=translation",
                 *QUICK_RUN.get(method, [])]  # fmt: skip
    seen, record = spy_run(tmp_path / "plain", overrides)
    task = seen["task"]
    assert len(seen["fit"]) == 2  # the reported model and the source_val scorer
    assert len(seen["predict"]) == 1
    test_rows = _rows(task.test.X)
    for fit_task in seen["fit"]:
        assert fit_task.test is None
        y = fit_task.target.y
        labeled = y != -1
        assert labeled.sum() == 3 * task.num_classes
        np.testing.assert_array_equal(y, task.target.y)  # exactly the dataset's labels
        target_rows = [tuple(np.round(r, 12)) for r in fit_task.target.X]
        if protocol == "inductive":
            assert not test_rows & set(target_rows)
        else:  # every test sample is an unlabeled target sample
            unlabeled = {r for r, lab in zip(target_rows, labeled, strict=True) if not lab}
            assert test_rows <= unlabeled
            assert not test_rows & {r for r, lab in zip(target_rows, labeled, strict=True) if lab}
    flipped, again = spy_run(tmp_path / "flipped", overrides, corrupt_test=lambda y: 1 - y)
    np.testing.assert_array_equal(flipped["predict"][0], seen["predict"][0])
    for a, b in zip(flipped["proba"], seen["proba"], strict=True):
        np.testing.assert_array_equal(a, b)
    # the flipped labels were used to score: binary accuracy turns into 1 - accuracy
    acc = record["metrics"]["accuracy"]
    assert again["metrics"]["accuracy"] == pytest.approx(1 - acc)
