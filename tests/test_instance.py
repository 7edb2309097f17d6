"""KMM and TrAdaBoost: the QP against a reference solver, the paper's algorithm, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import minimize
from sklearn.neighbors import KNeighborsClassifier

from tlbench.datasets.toy import toy_shift
from tlbench.errors import ConfigError, IncompatibleTaskError
from tlbench.kernels import pairwise_kernel
from tlbench.methods.baseline import SourceAndTarget, SourceOnly
from tlbench.methods.instance import tradaboost as tradaboost_module
from tlbench.methods.instance.kmm import (
    KMM,
    KernelRows,
    kmm_inputs,
    project_box_slab,
    solve_kmm_qp,
)
from tlbench.methods.instance.tradaboost import TrAdaBoost
from tlbench.task import Domain, TransferTask


def _qp(seed: int, n: int, kernel: str, eps: float | None, B: float):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n, 3))
    Xt = rng.normal(0.7, 0.8, size=(n + 5, 3))
    kw = {"kernel": kernel, "gamma": 0.5 if kernel != "linear" else None, "degree": 2}
    K = pairwise_kernel(Xs, **kw)
    kappa = n / len(Xt) * pairwise_kernel(Xs, Xt, **kw).sum(1)
    e = (math.sqrt(n) - 1) / math.sqrt(n) if eps is None else eps
    return K, kappa, B, n * (1 - e), n * (1 + e)


def _reference(K, kappa, B, lo, hi):
    Kn, kn = K.numpy(), kappa.numpy()
    n = len(kn)
    best = None
    for x0 in (np.ones(n), np.full(n, lo / n), np.full(n, min(B, hi / n))):
        res = minimize(
            lambda b: 0.5 * b @ Kn @ b - kn @ b,
            x0,
            jac=lambda b: Kn @ b - kn,
            bounds=[(0, B)] * n,
            constraints=[
                {"type": "ineq", "fun": lambda b: b.sum() - lo, "jac": lambda b: np.ones(n)},
                {"type": "ineq", "fun": lambda b: hi - b.sum(), "jac": lambda b: -np.ones(n)},
            ],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 2000},
        )
        if best is None or res.fun < best.fun:
            best = res
    return best.fun


@pytest.mark.parametrize(
    ("seed", "n", "kernel", "eps", "B"),
    [
        (0, 20, "rbf", None, 1000.0),
        (1, 30, "rbf", 0.05, 1000.0),  # slab active
        (2, 25, "rbf", None, 1.5),  # box upper bound active
        (3, 30, "linear", None, 1000.0),
        (4, 20, "polynomial", 0.1, 3.0),
        (5, 40, "rbf", 0.02, 2.0),
    ],
)
def test_qp_matches_reference_solver(seed, n, kernel, eps, B):
    K, kappa, B, lo, hi = _qp(seed, n, kernel, eps, B)
    beta, info = solve_kmm_qp(K, kappa, upper=B, lower_sum=lo, upper_sum=hi, tol=1e-9)
    assert info["converged"]
    ref = _reference(K, kappa, B, lo, hi)
    ours = info["objective"]
    assert ours <= ref + 1e-4 * abs(ref)  # at least as good as the reference, to 1e-4
    assert abs(ours - ref) <= 1e-4 * abs(ref)
    b = beta.numpy()
    assert b.min() >= -1e-6 and b.max() <= B + 1e-6
    assert lo - 1e-6 <= b.sum() <= hi + 1e-6


def test_projection_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = torch.as_tensor(rng.normal(0, 3, 50))
        B, lo, hi = 2.0, 40.0, 45.0
        b = project_box_slab(v, B, lo, hi)
        assert lo - 1e-9 <= float(b.sum()) <= hi + 1e-9
        # optimality: b = clip(v - nu) for one nu; compare with a bisection on nu
        target = min(max(float(v.clamp(0, B).sum()), lo), hi)
        a, z = -20.0, 20.0
        for _ in range(200):
            mid = (a + z) / 2
            a, z = (mid, z) if float((v - mid).clamp(0, B).sum()) > target else (a, mid)
        np.testing.assert_allclose(b.numpy(), (v - a).clamp(0, B).numpy(), atol=1e-9)


def test_rows_on_demand_match_the_dense_matrix():
    # the solver reads K through rows computed on demand; the optimum must not depend on
    # that, nor on the switch to the whole matrix when too many rows are needed
    rng = np.random.default_rng(7)
    Xs = torch.as_tensor(rng.normal(size=(300, 10)))
    Xt = torch.as_tensor(rng.normal(0.5, 0.8, size=(300, 10)))
    rows, kappa = kmm_inputs(Xs, Xt, gamma=0.1, block_size=37)
    rows._max_cached = 300  # never the whole matrix
    K = pairwise_kernel(Xs, gamma=0.1)
    np.testing.assert_allclose(kappa.numpy(), pairwise_kernel(Xs, Xt, gamma=0.1).sum(1).numpy())
    lo, hi = 300 * (1 - 0.9), 300 * (1 + 0.9)
    dense, info = solve_kmm_qp(K, kappa, upper=1000.0, lower_sum=lo, upper_sum=hi, tol=1e-9)
    lazy, info_lazy = solve_kmm_qp(rows, kappa, upper=1000.0, lower_sum=lo, upper_sum=hi, tol=1e-9)
    assert info["converged"] and info_lazy["converged"] and info_lazy["iterations"] == 0
    assert info_lazy["kernel_rows"] < 300  # a sparse optimum: not every row was needed
    few = KernelRows.from_data(Xs, gamma=0.1)
    few._max_cached = 20  # force the whole matrix
    full, info_full = solve_kmm_qp(few, kappa, upper=1000.0, lower_sum=lo, upper_sum=hi, tol=1e-9)
    for other in (info_lazy, info_full):
        assert abs(other["objective"] - info["objective"]) <= 1e-10 * abs(info["objective"])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), atol=1e-6)
    np.testing.assert_allclose(full.numpy(), dense.numpy(), atol=1e-6)


def _cloud_task():
    rng = np.random.default_rng(0)
    Xs = rng.normal(0, 1, (200, 2))
    Xt = rng.normal([1.5, 0.0], 0.4, (150, 2))
    ys = (Xs[:, 0] > 0).astype(np.int64)
    return TransferTask(Domain(Xs, ys), Domain(Xt), None, "tabular", 2), Xs


def test_kmm_upweights_source_points_in_the_target_cloud():
    task, Xs = _cloud_task()
    m = KMM(random_state=0).fit(task)
    near = np.linalg.norm(Xs - [1.5, 0.0], axis=1) < 0.8
    assert m.weights_[near].mean() > 3 * m.weights_[~near].mean()
    d = m.diagnostics_
    assert d["converged"] and d["kkt_residual"] <= 1e-6
    assert 1 <= d["ess"] <= len(Xs) and d["max_weight"] == pytest.approx(m.weights_.max())


def test_kmm_deterministic_and_kernels():
    task = toy_shift(n_source=150, n_target=150, seed=1).without_test()
    for kernel in ("rbf", "linear", "polynomial"):
        a = KMM(kernel=kernel, random_state=0).fit(task)
        b = KMM(kernel=kernel, random_state=0).fit(task)
        np.testing.assert_array_equal(a.weights_, b.weights_)
        assert np.all(np.isfinite(a.weights_)) and a.weights_.min() >= 0


def test_kmm_underflow_warns_and_stays_finite():
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(0, 1, (50, 2)), rng.normal(200, 1, (50, 2))
    task = TransferTask(Domain(Xs, (Xs[:, 0] > 0).astype(np.int64)), Domain(Xt), None, "tabular", 2)
    with pytest.warns(RuntimeWarning, match="underflow"):
        m = KMM(gamma=10.0).fit(task)
    assert np.all(np.isfinite(m.weights_))
    assert m.diagnostics_["kappa_underflow"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"B": 0.0}, "B"),
        ({"B": -1.0}, "B"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.0}, "eps"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": -2.0}, "gamma"),
        ({"kernel": "laplace"}, "kernel"),
        ({"estimator": "knn1"}, "sample weights"),
        ({"estimator": KNeighborsClassifier()}, "sample weights"),
    ],
)
def test_kmm_bad_input(params, match):
    task = toy_shift(n_source=60, n_target=60).without_test()
    with pytest.raises(ConfigError, match=match):
        KMM(**params).fit(task)


@pytest.mark.gpu
def test_kmm_cuda_matches_cpu():
    task = toy_shift(n_source=200, n_target=200).without_test()
    cpu = KMM(device="cpu", random_state=0).fit(task)
    gpu = KMM(device="cuda", random_state=0).fit(task)
    assert gpu.diagnostics_["converged"]
    rel = abs(gpu.diagnostics_["objective"] - cpu.diagnostics_["objective"])
    assert rel <= 1e-6 * abs(cpu.diagnostics_["objective"])


# --------------------------------------------------------------------------- TrAdaBoost


def _accuracy(method, task):
    return float(np.mean(method.fit(task.without_test()).predict(task.test.X) == task.test.y))


def test_tradaboost_beats_source_only_with_few_target_labels():
    # translated domains: the source's labelling is partly wrong for the target, the case
    # TrAdaBoost is for (on covariate shift, p(y|x) is shared and it has nothing to fix)
    gains = []
    for seed in range(3):
        task = toy_shift(
            n_source=300,
            n_target=400,
            target_labeled=0.05,
            shift="translation",
            shift_size=4.0,
            seed=seed,
        )
        gains.append(
            _accuracy(TrAdaBoost(random_state=0), task)
            - _accuracy(SourceOnly(estimator="linear_svm", random_state=0), task)
        )
    assert min(gains) >= 0 and np.mean(gains) > 0.02  # never worse, better on average


def test_tradaboost_follows_the_paper():
    task = toy_shift(
        n_source=200, n_target=200, target_labeled=10, shift="translation", seed=0
    ).without_test()
    m = TrAdaBoost(n_estimators=10, random_state=0).fit(task)
    assert m.beta_ == pytest.approx(1 / (1 + math.sqrt(2 * math.log(200) / 10)))
    assert len(m.estimators_) == 10 and np.all(np.isfinite(m.betas_))
    assert np.all((m.betas_ > 0) & (m.betas_ <= 1))
    # the final hypothesis is the paper's threshold rule on rounds ceil(N/2) .. N
    X = toy_shift(n_source=200, n_target=200, shift="translation", seed=1).test.X
    alphas = np.log(1 / m.betas_[4:])
    assert alphas.max() > 0  # a non-degenerate vote, so the paper's rule applies as is
    h = np.stack([e.predict(X) for e in m.estimators_[4:]])
    paper = (alphas @ h >= 0.5 * alphas.sum()).astype(int)
    np.testing.assert_array_equal(m.predict(X), paper)
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)


class _Constant(KNeighborsClassifier):
    """A 'classifier' that accepts weights and always predicts class 0 (eps_t >= 1/2)."""

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def test_tradaboost_degenerate_rounds_are_finite():
    task = toy_shift(n_source=100, n_target=100, target_labeled=5).without_test()
    m = TrAdaBoost(estimator=_Constant(), n_estimators=4).fit(task)  # eps_t = 1/2
    assert np.all(m.betas_ == 1.0)
    assert set(np.unique(m.predict(task.target.X))) <= {0, 1}
    tree = TrAdaBoost(estimator="decision_tree", random_state=0).fit(task)
    assert np.all(np.isfinite(tree.predict_proba(task.target.X)))


def test_tradaboost_bad_input():
    labeled = toy_shift(
        n_source=60, n_target=60, target_labeled=3, shift="translation"
    ).without_test()
    unlabeled = toy_shift(n_source=60, n_target=60).without_test()
    with pytest.raises(IncompatibleTaskError, match="target"):
        TrAdaBoost().fit(unlabeled)
    with pytest.raises(ConfigError, match="sample_weight|sample weights"):
        TrAdaBoost(estimator="knn1").fit(labeled)
    with pytest.raises(ConfigError, match="sample_weight"):
        TrAdaBoost(estimator=KNeighborsClassifier()).fit(labeled)
    with pytest.raises(ConfigError, match="n_estimators"):
        TrAdaBoost(n_estimators=0).fit(labeled)
    y = np.full(len(labeled.target), -1)
    y[:4] = 1
    one_class = TransferTask(labeled.source, Domain(labeled.target.X, y), None, "tabular", 2)
    with pytest.raises(IncompatibleTaskError, match="single class"):
        TrAdaBoost().fit(one_class)
    three = toy_shift(
        n_source=150, n_target=150, n_classes=3, target_labeled=3, shift="translation"
    ).without_test()
    with pytest.raises(IncompatibleTaskError, match="multiclass"):
        TrAdaBoost(multiclass=False).fit(three)
    assert TrAdaBoost(random_state=0).fit(three).predict(three.target.X).max() <= 2


@pytest.mark.parametrize(("n_classes", "sparse"), [(2, False), (3, False), (2, True)])
def test_tradaboost_precomputed_gram_is_the_linear_svm(monkeypatch, n_classes, sparse):
    # the linear SVM rounds train on the Gram matrix computed once; they must be the rounds of
    # SVC(kernel="linear") on the raw features: same target errors, same predictions
    task = toy_shift(
        n_source=150,
        n_target=150,
        n_classes=n_classes,
        target_labeled=5,
        shift="translation",
        seed=3,
    )
    if sparse:
        task = TransferTask(
            Domain(sp.csr_matrix(task.source.X), task.source.y),
            Domain(sp.csr_matrix(task.target.X), task.target.y),
            Domain(sp.csr_matrix(task.test.X), task.test.y),
            "tabular",
            n_classes,
        )
    monkeypatch.setattr(tradaboost_module, "PREDICT_BLOCK", 7)  # several predict blocks
    gram = TrAdaBoost(n_estimators=6, random_state=0).fit(task.without_test())
    monkeypatch.setattr(tradaboost_module, "GRAM_MAX_SAMPLES", 0)
    plain = TrAdaBoost(n_estimators=6, random_state=0).fit(task.without_test())
    assert gram.gram_ and gram.diagnostics_["precomputed_linear_kernel"]
    assert not plain.gram_ and plain.estimators_[0].kernel == "linear"
    assert isinstance(gram.estimators_[0], tradaboost_module.PrecomputedLinearSVC)
    np.testing.assert_allclose(gram.target_errors_, plain.target_errors_, atol=1e-12)
    np.testing.assert_array_equal(gram.predict(task.test.X), plain.predict(task.test.X))
    np.testing.assert_allclose(
        gram.predict_proba(task.test.X), plain.predict_proba(task.test.X), atol=1e-9
    )


def test_tradaboost_deterministic_with_a_seed():
    task = toy_shift(n_source=120, n_target=120, target_labeled=5, shift="translation", seed=2)
    for estimator in ("linear_svm", "decision_tree", "logreg"):
        a = TrAdaBoost(estimator=estimator, n_estimators=5, random_state=0)
        b = TrAdaBoost(estimator=estimator, n_estimators=5, random_state=0)
        a.fit(task.without_test())
        b.fit(task.without_test())
        np.testing.assert_array_equal(a.betas_, b.betas_)
        np.testing.assert_array_equal(a.predict_proba(task.test.X), b.predict_proba(task.test.X))


def test_source_and_target_trains_on_the_union():
    task = toy_shift(n_source=100, n_target=100, target_labeled=5).without_test()
    m = SourceAndTarget(random_state=0).fit(task)
    assert m.estimator_.n_features_in_ == task.source.X.shape[1]
    with pytest.raises(IncompatibleTaskError):
        SourceAndTarget().fit(toy_shift(n_source=60, n_target=60).without_test())
