"""Density-ratio estimators (KLIEP, uLSIF, logistic) and the methods and protocols that use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir
from scipy.optimize import minimize
from scipy.spatial.distance import cdist
from scipy.stats import norm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from tlbench import ConfigError
from tlbench.datasets.toy import toy_shift
from tlbench.density_ratio import (
    KLIEPRatio,
    LogisticRatio,
    ULSIFRatio,
    gaussian_basis,
    kliep_gap,
    project_weighted_simplex,
    solve_kliep,
    sq_distances,
    ulsif_alpha,
    ulsif_loocv,
)
from tlbench.methods.instance.kliep import KLIEP
from tlbench.methods.instance.ulsif import ULSIF
from tlbench.runner import run
from tlbench.selection import density_ratio

REPO = Path(__file__).resolve().parents[1]


def _cfg(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=list(overrides))


def _shift(seed: int, n: int, d: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (n, d)), rng.normal(0.5, 0.7, (n, d))


# --------------------------------------------------------------------------- KLIEP


def _slsqp(A: np.ndarray, b: np.ndarray) -> float:
    """The KLIEP optimum by a generic solver: max mean log(A a) s.t. b^T a = 1, a >= 0."""
    n, m = A.shape
    with threadpool_limits(limits=1, user_api="blas"):  # tiny products: threads only cost
        res = minimize(
            lambda a: -np.mean(np.log(A @ a)),
            np.full(m, 1.0 / b.sum()),
            jac=lambda a: -A.T @ (1.0 / (A @ a)) / n,
            bounds=[(0.0, None)] * m,
            constraints=[{"type": "eq", "fun": lambda a: b @ a - 1.0, "jac": lambda a: b}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 2000},
        )
    assert abs(b @ res.x - 1.0) < 1e-8
    return -res.fun


@pytest.mark.parametrize(
    ("seed", "d", "multiple", "solver"),
    [
        (0, 1, 0.25, "sqp"),  # narrow: many active coefficients
        (1, 3, 1.0, "sqp"),  # wide: a sparse solution
        (2, 10, 0.5, "sqp"),
        (3, 3, 0.5, "gradient"),  # the paper's projected gradient ascent
    ],
)
def test_kliep_solution_is_feasible_and_optimal(seed, d, multiple, solver):
    Xs, Xt = _shift(seed, 200, d)
    probe = KLIEPRatio(n_centers=40, random_state=seed).fit(Xs, Xt)  # for the median distance
    sigma = multiple * probe.median_distance_
    est = KLIEPRatio(n_centers=40, sigma=sigma, solver=solver, random_state=seed).fit(Xs, Xt)
    assert est.converged_ and est.gap_ <= 1e-6 and np.isnan(est.cv_scores_).all()
    w_source = est(Xs)
    assert abs(w_source.mean() - 1.0) < 1e-6  # the constraint mean_s w = 1
    assert est.constraint_residual_ < 1e-6
    assert (est.alpha_ >= 0).all()
    # the objective cannot be improved: a generic solver on the same basis finds no better point
    A = gaussian_basis(sq_distances(Xt, est.centers_), sigma)
    b = gaussian_basis(sq_distances(Xs, est.centers_), sigma).mean(0)
    ref = _slsqp(A, b)
    ours = np.mean(np.log(est(Xt)))
    assert ours == pytest.approx(est.objective_, rel=1e-12)
    assert ours >= ref - 1e-4 * abs(ref)
    assert ref <= ours + est.gap_ + 1e-9  # the certificate bounds the distance to the optimum


def test_kliep_gap_is_zero_only_at_the_optimum():
    Xs, Xt = _shift(4, 150, 2)
    C = Xt[:20]
    A, b = (
        gaussian_basis(sq_distances(Xt, C), 0.7),
        gaussian_basis(sq_distances(Xs, C), 0.7).mean(0),
    )
    alpha, info = solve_kliep(A, b, tol=1e-10)
    assert info["converged"] and 0 <= kliep_gap(A, b, alpha) <= 1e-10
    uniform = np.ones(20) / b.sum()
    gap = kliep_gap(A, b, uniform)
    f_uniform = np.mean(np.log(A @ uniform))
    assert gap > 1e-3 and info["objective"] - f_uniform <= gap  # a valid bound, not tight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_simplex_projection_is_the_nearest_feasible_point(seed):
    rng = np.random.default_rng(seed)
    v, b = rng.normal(size=8), rng.uniform(0.1, 2.0, size=8)
    p = project_weighted_simplex(v, b)
    assert (p >= 0).all() and b @ p == pytest.approx(1.0, abs=1e-12)
    ref = minimize(
        lambda a: 0.5 * np.sum((a - v) ** 2),
        np.full(8, 1.0 / b.sum()),
        jac=lambda a: a - v,
        bounds=[(0.0, None)] * 8,
        constraints=[{"type": "eq", "fun": lambda a: b @ a - 1.0, "jac": lambda a: b}],
        method="SLSQP",
        options={"ftol": 1e-15},
    ).x
    np.testing.assert_allclose(p, ref, atol=1e-7)


# --------------------------------------------------------------------------- uLSIF


def test_ulsif_closed_form_matches_a_direct_solve():
    Xs, Xt = _shift(6, 120, 3)
    est = ULSIFRatio(n_centers=30, sigma=0.9, regularization=0.05, random_state=0).fit(Xs, Xt)
    Phi_s = np.exp(-cdist(Xs, est.centers_, "sqeuclidean") / (2 * 0.9**2))
    Phi_t = np.exp(-cdist(Xt, est.centers_, "sqeuclidean") / (2 * 0.9**2))
    H, h = Phi_s.T @ Phi_s / len(Xs), Phi_t.mean(0)
    alpha = np.maximum(np.linalg.solve(H + 0.05 * np.eye(30), h), 0.0)
    np.testing.assert_allclose(est.alpha_, alpha, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est(Xs), Phi_s @ alpha, rtol=1e-9, atol=1e-12)
    J = 0.5 * np.mean((Phi_s @ alpha) ** 2) - np.mean(Phi_t @ alpha)
    assert est.objective_ == pytest.approx(J, rel=1e-9)
    assert np.isnan(est.cv_scores_).all()  # both fixed: no cross-validation


@pytest.mark.parametrize("lam", [1e-3, 0.1, 2.0])
def test_ulsif_analytic_loocv_equals_explicit_leave_one_out(lam):
    rng = np.random.default_rng(7)
    Phi_s, Phi_t = rng.random((25, 6)), rng.random((18, 6))  # n_s != n_t: 18 pairs
    explicit = []
    for i in range(18):
        alpha = ulsif_alpha(np.delete(Phi_s, i, 0), np.delete(Phi_t, i, 0), lam)
        explicit.append(0.5 * (Phi_s[i] @ alpha) ** 2 - Phi_t[i] @ alpha)
    assert ulsif_loocv(Phi_s, Phi_t, [lam])[0] == pytest.approx(np.mean(explicit), rel=1e-9)


# --------------------------------------------------------------------------- model selection


@pytest.mark.parametrize("cls", [KLIEPRatio, ULSIFRatio])
def test_cross_validation_recovers_a_known_ratio(cls):
    # source N(0, 1), target N(0.5, 0.7^2): the true ratio is known in closed form
    Xs, Xt = _shift(0, 1000)
    est = cls(random_state=0).fit(Xs, Xt)
    true = norm.pdf(Xs[:, 0], 0.5, 0.7) / norm.pdf(Xs[:, 0], 0.0, 1.0)
    w = est(Xs)
    assert np.corrcoef(w, true)[0, 1] > 0.9
    assert est.sigma_ in est.sigmas_ and np.isfinite(est.cv_score_)
    # not the grid's edges: the score has an interior optimum on this shift
    assert est.sigmas_[0] < est.sigma_ < est.sigmas_[-1]
    assert 0.9 < w.mean() < 1.1


def test_fixed_seed_reproduces_and_sparse_input_is_densified():
    Xs, Xt = _shift(8, 150, 4)
    a = KLIEPRatio(n_centers=30, random_state=3).fit(Xs, Xt)
    b = KLIEPRatio(n_centers=30, random_state=3).fit(sp.csr_matrix(Xs), sp.csr_matrix(Xt))
    np.testing.assert_allclose(a(Xs), b(sp.csr_matrix(Xs)), rtol=1e-10)
    u = ULSIFRatio(n_centers=30, random_state=3).fit(Xs, Xt)
    v = ULSIFRatio(n_centers=30, random_state=3).fit(sp.csr_matrix(Xs), Xt)
    np.testing.assert_allclose(u(Xs), v(Xs), rtol=1e-10)


@pytest.mark.parametrize("cls", [LogisticRatio, KLIEPRatio, ULSIFRatio])
def test_estimators_follow_the_sklearn_conventions(cls):
    est = cls(random_state=0)
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est(np.zeros((2, 1)))


# --------------------------------------------------------------------------- the protocols


def _old_density_ratio(X_source, X_target, seed=0):
    """``selection.density_ratio`` before the estimators moved to tlbench.density_ratio."""

    def flat(X):
        if sp.issparse(X):
            return X
        X = np.asarray(X, dtype=np.float64)
        return X.reshape(len(X), -1)

    Xs, Xt = flat(X_source), flat(X_target)
    stack = sp.vstack if sp.issparse(Xs) else np.vstack
    X = stack([Xs, Xt])
    d = np.r_[np.zeros(Xs.shape[0]), np.ones(Xt.shape[0])]
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(X, d)
    prior = Xs.shape[0] / Xt.shape[0]

    def ratio(Z):
        p = clf.predict_proba(flat(Z))[:, 1]
        return np.clip(prior * p / np.clip(1 - p, 1e-12, None), 1e-3, 1e3)

    return ratio


def _regression_data():
    rng = np.random.default_rng(13)
    Xs, Xt = rng.normal(size=(30, 3)), rng.normal(0.8, 1.0, size=(20, 3))
    Z = rng.normal(size=(5, 3))
    return Xs, Xt, Z, rng.normal(4.0, 1.0, size=(20, 3))


def test_logistic_ratio_keeps_the_old_numbers():
    Xs, Xt, Z, Xt_far = _regression_data()
    for make in (np.asarray, sp.csr_matrix):
        new = density_ratio(make(Xs), make(Xt), 3)(make(Z))
        np.testing.assert_array_equal(new, _old_density_ratio(make(Xs), make(Xt), 3)(make(Z)))
        same = density_ratio(make(Xs), make(Xt), 3, estimator="logistic")(make(Z))
        np.testing.assert_array_equal(same, new)
    # values printed by the implementation before the change (2026-12, scikit-learn 1.9.1)
    before = [0.2688326689664746, 0.13101858357213525, 3.0387076090826284, 0.03287084846013264,
              0.03209002595972437]  # fmt: skip
    np.testing.assert_allclose(density_ratio(Xs, Xt, 3)(Z), before, rtol=1e-9)
    far = [0.008443208948822594, 0.006588054882077953, 0.41550754907284493,
           0.011870684187124165, 0.001]  # fmt: skip
    np.testing.assert_allclose(density_ratio(Xs, Xt_far, 0)(Z), far, rtol=1e-9)  # the clip


@pytest.mark.parametrize(("name", "cls"), [("kliep", KLIEPRatio), ("ulsif", ULSIFRatio)])
def test_selection_density_ratio_dispatches_to_the_estimators(name, cls):
    Xs, Xt = _shift(9, 200, 2)
    ratio = density_ratio(Xs, Xt, 4, estimator=name)
    assert isinstance(ratio, cls) and ratio.random_state == 4
    np.testing.assert_allclose(ratio(Xs), cls(random_state=4).fit(Xs, Xt)(Xs))
    with pytest.raises(ConfigError, match="density_ratio"):
        density_ratio(Xs, Xt, 0, estimator="kmm")


def test_iwv_scores_with_the_configured_estimator(tmp_path):
    record = run(_cfg("selection=iwv", "selection.density_ratio=ulsif"), tmp_path)
    assert record["status"] == "ok" and record["selection_info"]["density_ratio"] == "ulsif"
    assert record["selection_score"] is not None and record["selection_scores"]["dev"] is not None
    with pytest.raises(ConfigError, match="selection.density_ratio"):
        run(_cfg("selection=dev", "selection.density_ratio=kde"), tmp_path / "bad")


# --------------------------------------------------------------------------- the methods


@pytest.mark.parametrize("method", ["kliep", "ulsif"])
def test_methods_run_through_the_runner(tmp_path, method):
    record = run(_cfg(f"method={method}"), tmp_path)
    assert record["status"] == "ok" and record["method"] == method
    assert record["family"] == "instance" and 0.5 < record["metrics"]["accuracy"] <= 1.0
    diag = record["diagnostics"]
    for key in ("ess", "max_weight", "sigma", "cv_score", "objective", "seconds"):
        assert diag[key] is not None, key
    assert 1 < diag["ess"] <= record["n_source"] and diag["sigma"] > 0
    if method == "kliep":
        assert diag["converged"] and diag["constraint_residual"] < 1e-6
    else:
        assert diag["regularization"] > 0
    assert record["selection_info"]["density_ratio"] == "logistic"  # source_val's default


@pytest.mark.parametrize(("cls", "ratio_cls"), [(KLIEP, KLIEPRatio), (ULSIF, ULSIFRatio)])
def test_method_weights_are_the_estimators_ratio(cls, ratio_cls):
    task = toy_shift(n_source=100, n_target=100, seed=0).without_test()
    method = cls(n_centers=50, random_state=1).fit(task)
    ratio = ratio_cls(n_centers=50, random_state=1).fit(task.source.X, task.target.X)
    np.testing.assert_array_equal(method.weights_, ratio(task.source.X))


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (KLIEPRatio, {"sigma": -1.0}, "sigma"),
        (KLIEPRatio, {"sigma_grid": []}, "sigma_grid"),
        (KLIEPRatio, {"sigma_grid": [1.0, 0.0]}, "sigma_grid"),
        (KLIEPRatio, {"n_centers": 0}, "n_centers"),
        (KLIEPRatio, {"n_folds": 1}, "n_folds"),
        (KLIEPRatio, {"solver": "newton"}, "solver"),
        (KLIEPRatio, {"tol": 0.0}, "tol"),
        (KLIEPRatio, {"max_iter": 2.5}, "max_iter"),
        (ULSIFRatio, {"regularization": 0.0}, "regularization"),
        (ULSIFRatio, {"regularization_grid": [-1.0]}, "regularization_grid"),
        (ULSIFRatio, {"sigma": float("nan")}, "sigma"),
        (LogisticRatio, {"C": -1.0}, "C"),
        (LogisticRatio, {"clip": (1.0, 0.5)}, "clip"),
        (KLIEP, {"estimator": "knn1"}, "sample weights"),
        (ULSIF, {"estimator": "knn1"}, "sample weights"),
        (KLIEP, {"sigma": 0.0}, "sigma"),
        (ULSIF, {"n_centers": -3}, "n_centers"),
    ],
)
def test_bad_hyperparameters_are_one_line_config_errors(cls, params, match):
    task = toy_shift(n_source=40, n_target=40, seed=0)
    est = cls(**params)
    with pytest.raises(ConfigError, match=match) as exc:
        if issubclass(cls, KLIEP | ULSIF):
            est.fit(task.without_test())
        else:
            est.fit(task.source.X, task.target.X)
    assert "\n" not in str(exc.value)
