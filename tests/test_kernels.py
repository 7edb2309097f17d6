"""Known answers for the kernel and MMD toolkit (tlbench.kernels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import linear_kernel, polynomial_kernel, rbf_kernel

from tlbench.errors import ConfigError, DataError
from tlbench.kernels import (
    median_gamma,
    mk_mmd2,
    mk_mmd_test_statistics,
    mmd2,
    mmd2_diagnostic,
    optimal_kernel_weights,
    pairwise_kernel,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    ("kernel", "reference", "params"),
    [
        ("linear", linear_kernel, {}),
        ("rbf", rbf_kernel, {"gamma": 0.3}),
        ("polynomial", polynomial_kernel, {"gamma": 0.2, "degree": 2, "coef0": 1.0}),
    ],
)
def test_pairwise_kernel_matches_sklearn(rng, kernel, reference, params):
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
    K = pairwise_kernel(X, Y, kernel=kernel, **params)
    assert K.dtype == torch.float64 and K.shape == (40, 30)
    np.testing.assert_allclose(K.numpy(), reference(X, Y, **params), atol=1e-10)
    blocked = pairwise_kernel(torch.as_tensor(X), Y, kernel=kernel, block_size=7, **params)
    np.testing.assert_allclose(blocked.numpy(), K.numpy(), atol=1e-12)


def test_median_gamma_is_inverse_median_squared_distance(rng):
    X = rng.normal(size=(50, 3))
    d = ((X[:, None] - X[None]) ** 2).sum(-1)[np.triu_indices(50, 1)]
    assert median_gamma(X) == pytest.approx(1.0 / np.median(d))
    K = pairwise_kernel(X)  # gamma=None: the median heuristic
    np.testing.assert_allclose(K.numpy(), rbf_kernel(X, gamma=1.0 / np.median(d)), atol=1e-12)
    assert median_gamma(np.ones((5, 2))) == 1.0  # all distances zero: a defined fallback


def test_mmd_near_zero_for_one_distribution_and_grows_with_shift(rng):
    X = rng.normal(size=(300, 4))
    values = [float(mmd2(X, rng.normal(size=(300, 4)) + s, gamma=0.25)) for s in (0, 0.5, 1, 2)]
    assert values[0] < 0.01
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] > 0.3


def test_unbiased_estimator_is_centred_under_the_null(rng):
    reps = [
        float(mmd2(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)), estimator="unbiased"))
        for _ in range(300)
    ]
    assert abs(np.mean(reps)) < 3 * np.std(reps) / np.sqrt(len(reps))
    assert min(reps) < 0  # a U-statistic can be negative; the V-statistic cannot
    biased = float(mmd2(rng.normal(size=(40, 2)), rng.normal(size=(40, 2))))
    assert biased >= 0


def test_linear_time_and_quadratic_agree_in_expectation(rng):
    lin, quad = [], []
    for _ in range(200):
        X, Y = rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 0.7
        lin.append(float(mmd2(X, Y, gamma=0.5, estimator="linear")))
        quad.append(float(mmd2(X, Y, gamma=0.5, estimator="unbiased")))
    assert np.mean(lin) == pytest.approx(np.mean(quad), abs=3 * np.std(lin) / np.sqrt(200))


def test_blocked_mmd_equals_unblocked(rng):
    X, Y = rng.normal(size=(57, 3)), rng.normal(size=(41, 3)) + 0.3
    for est in ("biased", "unbiased"):
        a = mmd2(X, Y, estimator=est)
        b = mmd2(X, Y, estimator=est, block_size=10)
        assert float(a) == pytest.approx(float(b), rel=1e-10)


def test_mk_mmd_zero_for_identical_batches_and_differentiable(rng):
    X = torch.as_tensor(rng.normal(size=(64, 8)), dtype=torch.float32)
    assert float(mk_mmd2(X, X.clone())) == pytest.approx(0.0, abs=1e-6)
    Y = X + 1.0
    Xg = X.clone().requires_grad_(True)
    value = mk_mmd2(Xg, Y, estimator="linear")
    value.backward()
    assert float(mk_mmd2(X, Y)) > 0.05 and value.dtype == torch.float32
    assert torch.isfinite(Xg.grad).all() and Xg.grad.abs().sum() > 0
    # explicit gammas and weights: one kernel with weight 1 is plain MMD
    g = median_gamma(X, Y)
    assert float(mk_mmd2(X, Y, gammas=[g], weights=[1.0])) == pytest.approx(
        float(mmd2(X, Y, gamma=g)), rel=1e-5
    )


def test_bad_arguments_raise_clear_errors(rng):
    X = rng.normal(size=(10, 3))
    with pytest.raises(ConfigError, match="kernel"):
        pairwise_kernel(X, kernel="sigmoid")
    with pytest.raises(ConfigError, match="gamma"):
        mmd2(X, X, gamma=-1.0)
    with pytest.raises(ConfigError, match="estimator"):
        mmd2(X, X, estimator="quadratic")
    with pytest.raises(DataError, match="feature count"):
        mmd2(X, rng.normal(size=(10, 4)))
    with pytest.raises(ConfigError, match="weights"):
        mk_mmd2(X, X, weights=[1.0])


def test_diagnostic_is_deterministic_and_scale_free(rng):
    X, Y = rng.normal(size=(800, 5)), rng.normal(size=(700, 5)) + 0.5
    a = mmd2_diagnostic(X, Y)
    assert a == mmd2_diagnostic(X, Y) and a > 0
    assert mmd2_diagnostic(10 * X, 10 * Y) == pytest.approx(a)  # median bandwidth rescales


def _random_program(rng, n_kernels=12, n_terms=8):
    """A DAN-like kernel-weight program: d of mixed sign, Q a rank-deficient PSD matrix."""
    G = rng.normal(size=(n_kernels, n_terms))
    return rng.normal(size=n_kernels) + 0.3, G @ G.T / n_terms


@pytest.mark.parametrize("seed", range(5))
def test_kernel_weight_program_meets_its_kkt_conditions(seed):
    rng = np.random.default_rng(seed)
    d, Q = _random_program(rng)
    eps = 1e-3
    beta = optimal_kernel_weights(d, Q, eps=eps)
    A = Q + eps * np.eye(len(d))
    # primal feasibility
    assert d @ beta == pytest.approx(1.0, abs=1e-9)
    assert (beta >= 0).all() and (beta > 0).any()
    # stationarity of b'Ab - lam (d'b - 1) - mu'b: 2Ab = lam d + mu, so lam = 2 b'Ab
    lam = 2.0 * beta @ A @ beta
    mu = 2.0 * A @ beta - lam * d
    scale = np.abs(2.0 * A @ beta).max() + abs(lam) * np.abs(d).max()
    assert lam > 0
    assert (mu >= -1e-8 * scale).all()  # dual feasibility
    assert np.abs(mu * beta).max() <= 1e-8 * scale  # complementary slackness
    assert (beta == 0).any() and (mu > 1e-6 * scale).any()  # some bounds are active
    # no feasible point does better (random ones and a general-purpose solver's)
    obj = beta @ A @ beta
    for _ in range(200):
        b = rng.random(len(d)) * (d > 0)
        b /= d @ b
        assert b @ A @ b >= obj - 1e-12
    from scipy.optimize import minimize

    ref = minimize(lambda b: b @ A @ b, np.where(d > 0, 1.0, 0.0) / d[d > 0].sum(),
                   jac=lambda b: 2 * A @ b, method="SLSQP", bounds=[(0, None)] * len(d),
                   constraints=[{"type": "eq", "fun": lambda b: d @ b - 1}],
                   options={"ftol": 1e-14, "maxiter": 500})  # fmt: skip
    assert obj <= ref.fun + 1e-9


def test_kernel_weight_program_known_answers():
    # no variance: min eps |b|^2 subject to d'b = 1, b >= 0 is d+ / |d+|^2
    d = np.array([0.5, -0.2, 0.1, 0.0])
    beta = optimal_kernel_weights(d, np.zeros((4, 4)))
    dp = np.clip(d, 0, None)
    np.testing.assert_allclose(beta, dp / (dp @ dp), atol=1e-10)
    # one kernel with a positive discrepancy: all the weight on it
    beta = optimal_kernel_weights(np.array([-1.0, 2.0, -0.5]), np.diag([1.0, 3.0, 0.5]))
    np.testing.assert_allclose(beta, [0.0, 0.5, 0.0], atol=1e-12)
    # the same discrepancy, different variances: the noisier kernel gets less weight
    beta = optimal_kernel_weights(np.array([1.0, 1.0]), np.diag([1.0, 4.0]), eps=1e-12)
    np.testing.assert_allclose(beta, [0.8, 0.2], atol=1e-9)  # b_u proportional to d_u / Q_uu
    # no positive discrepancy: the program is infeasible
    assert optimal_kernel_weights(np.array([-1.0, 0.0]), np.eye(2)) is None
    with pytest.raises(ConfigError, match="eps"):
        optimal_kernel_weights(np.ones(2), np.eye(2), eps=0.0)
    with pytest.raises(DataError, match="Q must be"):
        optimal_kernel_weights(np.ones(2), np.eye(3))


def test_mk_mmd_test_statistics_follow_the_definitions(rng):
    h = rng.normal(size=(3, 9))  # 3 kernels, 9 quad-tuples: 4 pairs (the last one left out)
    d, Q = mk_mmd_test_statistics(torch.as_tensor(h))
    np.testing.assert_allclose(d, h.mean(1))
    delta = np.stack([h[:, 2 * j] - h[:, 2 * j + 1] for j in range(4)], axis=1)
    np.testing.assert_allclose(Q, sum(np.outer(delta[:, j], delta[:, j]) for j in range(4)) / 4)
    assert np.linalg.eigvalsh(Q).min() > -1e-12
    # Q estimates twice the covariance of the terms
    big = rng.multivariate_normal([0, 0], [[1.0, 0.5], [0.5, 2.0]], size=200_000).T
    np.testing.assert_allclose(mk_mmd_test_statistics(big)[1], [[2, 1], [1, 4]], atol=0.05)
    with pytest.raises(DataError, match="quad-tuples"):
        mk_mmd_test_statistics(np.ones((3, 1)))


@pytest.mark.gpu
def test_cuda_matches_cpu(rng):
    X, Y = rng.normal(size=(200, 5)), rng.normal(size=(150, 5)) + 0.4
    for est in ("biased", "unbiased", "linear"):
        cpu = float(mmd2(X, Y, estimator=est))
        gpu = mmd2(X, Y, estimator=est, device="cuda")
        assert gpu.device.type == "cuda" and float(gpu) == pytest.approx(cpu, rel=1e-8)
    Xt = torch.as_tensor(X, dtype=torch.float32, device="cuda")
    assert float(mk_mmd2(Xt, Xt + 1)) == pytest.approx(float(mk_mmd2(X, X + 1)), rel=1e-4)
