"""A-SVM (Yang et al. 2007) and RMTL (Evgeniou & Pontil 2004): known answers and limits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir
from scipy.optimize import minimize
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from tlbench import ConfigError
from tlbench.methods.baseline import SourceAndTarget, SourceOnly, TargetOnly
from tlbench.methods.parameter.asvm import ASVM, solve_box_qp
from tlbench.methods.parameter.rmtl import RMTL, augment_features
from tlbench.registry import DATASETS
from tlbench.runner import run

REPO = Path(__file__).resolve().parents[1]
TIGHT_SVM = SVC(kernel="linear", C=1.0, tol=1e-8)  # linear_svm, solved to a tight tolerance


def _toy(seed: int = 0, **options):
    opts = {"n_source": 150, "n_target": 150, "target_labeled": 5, "seed": seed, **options}
    return DATASETS.get("toy_shift")(**opts)


def _sparse(task):
    def to_sparse(dom):
        return replace(dom, X=sp.csr_matrix(dom.X))

    return replace(
        task,
        source=to_sparse(task.source),
        target=to_sparse(task.target),
        test=to_sparse(task.test),
    )


def _dual(alpha, K, y, p):
    a = alpha * y
    return p @ alpha - 0.5 * a @ K @ a


def _kkt(alpha, K, y, p, C):
    """Largest violation of the box-QP optimality conditions."""
    g = p - y * (K @ (alpha * y))
    up = np.where(alpha < C, np.maximum(g, 0), 0)
    down = np.where(alpha > 0, np.maximum(-g, 0), 0)
    return max(up.max(), down.max())


# --------------------------------------------------------------------------- A-SVM: the solver


@pytest.mark.parametrize("case", ["rbf", "low_rank_linear"])
def test_box_qp_matches_an_independent_solver(case):
    rng = np.random.default_rng(3)
    m, C = 14, 0.7
    X = rng.normal(size=(m, 3 if case == "low_rank_linear" else 6))
    K = X @ X.T if case == "low_rank_linear" else rbf_kernel(X, gamma=0.3)  # rank 3 of 14
    Y = np.sign(rng.normal(size=(2, m)))
    P = 1.0 - Y * rng.normal(scale=1.5, size=(2, m))  # 1 - y f^s(x), f^s arbitrary
    alpha, _, violation = solve_box_qp(K, Y, P, C)
    assert violation < 1e-7
    for c in range(2):
        y, p = Y[c], P[c]
        assert np.all((alpha[c] >= 0) & (alpha[c] <= C))
        assert _kkt(alpha[c], K, y, p, C) < 1e-7

        def negdual(a, y=y, p=p):
            return -_dual(a, K, y, p)

        def grad(a, y=y, p=p):
            return -(p - y * (K @ (a * y)))

        ref = minimize(negdual, np.full(m, C / 2), jac=grad, method="SLSQP",
                       bounds=[(0, C)] * m, options={"ftol": 1e-14, "maxiter": 1000})  # fmt: skip
        assert ref.success
        # the dual value and the delta function (K (alpha y), unique even when alpha is not)
        assert _dual(alpha[c], K, y, p) >= -ref.fun - 1e-9
        assert _dual(alpha[c], K, y, p) == pytest.approx(-ref.fun, abs=1e-7)
        np.testing.assert_allclose(K @ (alpha[c] * y), K @ (ref.x * y), atol=1e-4)


def test_fitted_asvm_satisfies_the_dual_kkt_conditions():
    task = _toy(n_classes=3, shift="covariate")
    model = ASVM(C=2.0).fit(task.without_test())
    lab = task.target.labeled()
    K = lab.X @ lab.X.T
    f_source = model.source_decision_function(lab.X)
    for c, cls in enumerate(model.classes_):
        y = np.where(lab.y == cls, 1.0, -1.0)
        p = 1.0 - y * f_source[:, c]
        assert _kkt(model.alpha_[c], K, y, p, 2.0) < 1e-6
    # f = f^s + sum_i alpha_i y_i K(x, x_i), as predicted
    X = task.test.X
    expect = model.source_decision_function(X) + X @ lab.X.T @ model.dual_coef_.T
    np.testing.assert_allclose(model.decision_function(X), expect, atol=1e-10)
    d = model.diagnostics_
    assert d["n_support"] == int(np.sum(model.alpha_ > 0)) > 0
    assert d["kkt_violation"] < 1e-6 and np.isfinite(d["dual_objective"])
    assert 0 <= d["source_accuracy_labeled_target"] <= 1
    assert model.classifier_ == "asvm(linear_svm source)"


# --------------------------------------------------------------------------- A-SVM: limits


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_asvm_huge_C_classifies_every_labeled_target_sample(kernel):
    # 2 x 3 labeled target samples in 20 dimensions: separable by f^s + dw.x without a bias
    task = _toy(n_features=20, target_labeled=3, shift="translation", shift_size=3.0)
    model = ASVM(C=1e6, kernel=kernel).fit(task.without_test())
    lab = task.target.labeled()
    assert model.diagnostics_["source_accuracy_labeled_target"] < 1.0  # something to fix
    np.testing.assert_array_equal(model.predict(lab.X), lab.y)
    assert np.all(lab.y * 2 - 1 == np.sign(model.decision_function(lab.X)))
    assert np.all(np.abs(model.decision_function(lab.X)) >= 1 - 1e-6)  # hard margin


@pytest.mark.parametrize("n_classes", [2, 3])
def test_asvm_tiny_C_is_the_source_classifier(n_classes):
    task = _toy(n_classes=n_classes, shift="translation")
    model = ASVM(C=1e-12).fit(task.without_test())
    X = task.test.X
    np.testing.assert_allclose(
        model.decision_function(X), model.source_decision_function(X), atol=1e-9
    )
    np.testing.assert_array_equal(model.predict(X), model.predict_source_only(X))
    big = ASVM(C=100.0).fit(task.without_test())
    assert np.any(big.predict(X) != big.predict_source_only(X))  # C does something
    if n_classes == 2:  # the source classifier is source_only's linear SVM
        ref = SourceOnly(estimator="linear_svm").fit(task.without_test())
        np.testing.assert_allclose(
            model.source_decision_function(X), ref.estimator_.decision_function(X), atol=1e-6
        )
        np.testing.assert_array_equal(model.predict(X), ref.predict(X))


def test_asvm_sparse_input_equals_dense():
    task = _toy(n_classes=3, shift="translation")
    dense = ASVM().fit(task.without_test())
    sparse_task = _sparse(task)
    sparse = ASVM().fit(sparse_task.without_test())
    np.testing.assert_allclose(
        sparse.decision_function(sparse_task.test.X), dense.decision_function(task.test.X),
        atol=1e-6,
    )  # fmt: skip


# --------------------------------------------------------------------------- RMTL


def test_rmtl_small_mu_is_one_shared_svm():
    # mu -> 0: one model for source + labeled target (source_and_target's linear SVM)
    # (libsvm stopped at tol=1e-8 on both sides, so that the two solutions can be compared)
    task = _toy(shift="translation")
    ref = SourceAndTarget(estimator=TIGHT_SVM).fit(task.without_test())
    expect = ref.estimator_.decision_function(task.test.X)
    model = RMTL(mu=1e-9, tol=1e-8).fit(task.without_test())
    np.testing.assert_allclose(model.decision_function(task.test.X), expect, atol=1e-6)
    # the per-task constant's shared part changes nothing (up to libsvm's float32 kernel cache)
    model = RMTL(mu=1e-9, intercept_scaling=10.0, tol=1e-8).fit(task.without_test())
    np.testing.assert_allclose(
        model.decision_function(task.test.X), expect, atol=3e-3 * np.abs(expect).max()
    )
    three = _toy(n_classes=3, shift="translation")
    ref3 = SourceAndTarget(estimator="linear_svm").fit(three.without_test())
    model3 = RMTL(mu=1e-9).fit(three.without_test())
    np.testing.assert_array_equal(model3.predict(three.test.X), ref3.predict(three.test.X))


def test_rmtl_large_mu_with_task_intercepts_is_independent_tasks():
    # mu -> inf with a per-task intercept: the target task alone (target_only's linear SVM)
    # and the source task alone (source_only's), up to O(1/s^2) and libsvm's float32 cache
    task = _toy(shift="translation", target_labeled=8)
    fit_task = task.without_test()
    model = RMTL(mu=1e9, intercept_scaling=10.0, tol=1e-8).fit(fit_task)
    X = task.test.X
    for name, ref in (("target", TargetOnly(estimator=TIGHT_SVM)),
                      ("source", SourceOnly(estimator=TIGHT_SVM))):  # fmt: skip
        expect = ref.fit(fit_task).estimator_.decision_function(X)
        got = model.decision_function(X, task=name)
        np.testing.assert_allclose(got, expect, atol=2e-3 * np.abs(expect).max())


def test_rmtl_large_mu_shares_only_the_intercept():
    # mu -> inf with libsvm's one intercept b (the default): the target block decouples into
    # the bias-free target SVM offset by b, solved here independently with A-SVM's dual (f^s = b)
    task = _toy(shift="translation", target_labeled=8)
    fit_task = task.without_test()
    model = RMTL(mu=1e9, tol=1e-8).fit(fit_task)
    lab = task.target.labeled()
    b = float(model.svc_.intercept_[0])
    y = np.where(lab.y == model.classes_[1], 1.0, -1.0)
    K = lab.X @ lab.X.T
    alpha, _, _ = solve_box_qp(K, y[None], 1.0 - y[None] * b, 1.0)
    X = task.test.X
    expect = b + X @ lab.X.T @ (alpha[0] * y)
    np.testing.assert_allclose(model.decision_function(X), expect, atol=1e-5)
    alone = TargetOnly(estimator=TIGHT_SVM).fit(fit_task).estimator_.decision_function(X)
    assert np.abs(model.decision_function(X) - alone).max() > 0.01 * np.abs(alone).max()


def test_rmtl_mu_interpolates_between_the_limits():
    task = _toy(shift="translation")
    X = task.test.X
    shared = RMTL(mu=1e-9).fit(task.without_test()).decision_function(X)
    alone = RMTL(mu=1e9).fit(task.without_test()).decision_function(X)
    middle = RMTL(mu=1.0).fit(task.without_test()).decision_function(X)
    assert np.abs(middle - shared).max() > 1e-2 and np.abs(middle - alone).max() > 1e-2


@pytest.mark.parametrize("sparse_input", [False, True])
def test_rmtl_kernel_equals_feature_augmentation(sparse_input):
    task = _toy(n_classes=3, shift="translation")
    if sparse_input:
        task = _sparse(task)
    model = RMTL(C=0.5, mu=0.7, intercept_scaling=1.0, tol=1e-8).fit(task.without_test())
    lab = task.target.labeled()
    B = model.intercept_
    stack = sp.vstack if sparse_input else np.vstack
    Z = stack([augment_features(task.source.X, False, 0.7, B),
               augment_features(lab.X, True, 0.7, B)])  # fmt: skip
    y = np.concatenate([task.source.y, lab.y])
    svc = SVC(kernel="linear", C=0.5, tol=1e-8, decision_function_shape="ovo").fit(Z, y)
    model.svc_.set_params(decision_function_shape="ovo")  # compare the raw pairwise values
    for is_target, name in ((True, "target"), (False, "source")):
        Zt = augment_features(task.test.X, is_target, 0.7, B)
        np.testing.assert_allclose(
            model.decision_function(task.test.X, task=name), svc.decision_function(Zt),
            atol=1e-6,
        )  # fmt: skip
    np.testing.assert_array_equal(model.predict(task.test.X), svc.predict(
        augment_features(task.test.X, True, 0.7, B)))  # fmt: skip


def test_rmtl_rbf_kernel_runs_and_records():
    task = _toy(n_classes=3, shift="translation")
    model = RMTL(kernel="rbf", gamma=0.5).fit(task.without_test())
    d = model.diagnostics_
    assert d["n_support"] > 0 and d["n_target_labeled"] == 15
    assert d["lambda2"] == pytest.approx(d["mu"] * d["lambda1"] / 2)
    assert d["C_paper"] == pytest.approx(0.5)  # C mu / (1 + mu) with C = mu = 1
    assert model.classifier_ == "svc(multi-task rbf kernel)"
    assert model.predict(task.test.X).shape == (len(task.test),)


# --------------------------------------------------------------------------- both


def test_both_beat_source_only_on_a_shifted_toy_task():
    # covariate shift with three classes: the linear source SVM fails on the shifted target
    acc = {"source_only": [], "asvm": [], "rmtl": []}
    for seed in range(3):
        task = _toy(seed, n_source=200, n_target=200, n_classes=3, shift="covariate")
        for name, method in (("source_only", SourceOnly(estimator="linear_svm")),
                             ("asvm", ASVM()), ("rmtl", RMTL())):  # fmt: skip
            pred = method.fit(task.without_test()).predict(task.test.X)
            acc[name].append(np.mean(pred == task.test.y))
    mean = {k: float(np.mean(v)) for k, v in acc.items()}
    assert mean["asvm"] > mean["source_only"] + 0.1, mean
    assert mean["rmtl"] > mean["source_only"] + 0.1, mean


BAD = [
    (ASVM, {"C": -1}, "asvm: C must be > 0, got -1"),
    (ASVM, {"source_C": 0}, "asvm: source_C must be > 0, got 0"),
    (ASVM, {"kernel": "poly"}, "asvm: kernel must be one of linear, rbf, got 'poly'"),
    (ASVM, {"kernel": "rbf", "gamma": -2.0}, "asvm: gamma must be > 0"),
    (ASVM, {"max_iter": 0}, "asvm: max_iter must be an integer >= 1"),
    (ASVM, {"tol": 0.0}, "asvm: tol must be > 0"),
    (RMTL, {"C": 0}, "rmtl: C must be > 0, got 0"),
    (RMTL, {"mu": -1.0}, "rmtl: mu must be > 0, got -1.0"),
    (RMTL, {"kernel": "poly"}, "rmtl: kernel must be one of linear, rbf"),
    (RMTL, {"gamma": "auto"}, "rmtl: gamma must be > 0 or 'scale'"),
    (RMTL, {"intercept_scaling": -1}, "rmtl: intercept_scaling must be >= 0"),
]


@pytest.mark.parametrize(("cls", "params", "message"), BAD)
def test_bad_hyperparameters_raise_config_error(cls, params, message):
    method = cls(**params)  # the constructor only stores them
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        method.fit(_toy().without_test())


def _cfg(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("method", ["asvm", "rmtl"])
def test_runner_skips_without_labeled_target(tmp_path, method):
    record = run(_cfg(f"method={method}", "selection=none"), tmp_path)
    assert record["status"] == "skipped"
    assert "needs labeled target samples" in record["reason"]
    assert "target_labeled" in record["reason"]


@pytest.mark.parametrize(
    ("method", "classifier"),
    [("asvm", "asvm(linear_svm source)"), ("rmtl", "svc(multi-task linear kernel)")],
)
def test_runner_records_classifier_and_diagnostics(tmp_path, method, classifier):
    overrides = [f"method={method}", "dataset.target_labeled=3", "selection=none"]
    record = run(_cfg(*overrides), tmp_path, overrides)
    assert record["status"] == "ok" and record["family"] == "parameter"
    assert record["classifier"] == classifier
    assert record["diagnostics"]["n_support"] > 0
    assert 0.5 < record["metrics"]["accuracy"] <= 1.0
