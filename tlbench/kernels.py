"""Kernels and maximum mean discrepancy (MMD): the shared maths of KMM, TCA, JDA and DAN.

Everything is torch, runs on any device, keeps autograd (so deep methods can use the MMD as a
loss) and accepts numpy arrays or tensors. Large inputs can be processed in row blocks, so the
``n x m`` kernel matrix of an MMD estimate never has to exist at once.

Conventions (the config keys are the same everywhere in tlbench):

- ``kernel="linear"``: k(x, y) = <x, y>;
- ``kernel="rbf"``: k(x, y) = exp(-gamma ||x - y||^2); ``gamma=None`` picks the median heuristic
  (:func:`median_gamma`);
- ``kernel="polynomial"``: k(x, y) = (gamma <x, y> + coef0) ^ degree; ``gamma=None`` means
  1 / n_features (scikit-learn's default).

MMD² estimators (Gretton, Borgwardt, Rasch, Schölkopf, Smola, "A Kernel Two-Sample Test",
JMLR 13, 2012):

- ``"biased"``: the V-statistic mean(K_ss) + mean(K_tt) - 2 mean(K_st); never negative;
- ``"unbiased"``: the U-statistic (diagonals of K_ss and K_tt left out); mean 0 under the null,
  can be negative;
- ``"linear"``: the linear-time estimate of Lemma 14 over disjoint pairs; unbiased, O(n), noisy.

:func:`mk_mmd2` is the multi-kernel MMD of DAN (Long, Cao, Wang, Jordan, ICML 2015): a weighted
sum of Gaussian kernels whose bandwidths are multiples of a median-heuristic base bandwidth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError

KERNELS: tuple[str, ...] = ("linear", "rbf", "polynomial")
MMD_ESTIMATORS: tuple[str, ...] = ("biased", "unbiased", "linear")

#: DAN's default family: 5 Gaussian bandwidths, base * 2^-2 ... base * 2^2 (as TLlib's
#: ``kernel_mul=2, kernel_num=5``), the base bandwidth being the median squared distance.
DEFAULT_BANDWIDTH_MULTIPLIERS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


def as_tensor(
    X: Any, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Convert an array-like to a 2-D floating tensor.

    Parameters
    ----------
    X : ndarray, sparse matrix or Tensor
        Samples ``(n, d)``. A 1-D input is read as ``n`` samples of one feature; more
        dimensions are flattened per sample.
    dtype : torch.dtype, optional
        Floating dtype. Default: a floating tensor keeps its dtype, anything else (numpy,
        integer tensors) becomes float64, as numpy would compute.
    device : torch.device or str, optional
        Default: a tensor stays where it is, numpy goes to the CPU.

    Returns
    -------
    X : Tensor of shape (n, d)
    """
    if isinstance(X, torch.Tensor):
        t = X
    else:
        import scipy.sparse as sp

        if sp.issparse(X):
            X = X.toarray()
        t = torch.as_tensor(np.asarray(X))
    if dtype is None and not t.is_floating_point():
        dtype = torch.float64
    t = t.to(device=device if device is not None else t.device, dtype=dtype or t.dtype)
    if t.ndim == 1:
        t = t[:, None]
    elif t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    return t


def sq_dists(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``||x_i - y_j||^2`` between the rows of two tensors."""
    # The expansion |x|^2 + |y|^2 - 2<x, y> is a GEMM (fast on every device); clamping removes
    # the small negative values its rounding produces for near-identical rows.
    d = (X * X).sum(1)[:, None] + (Y * Y).sum(1)[None, :] - 2.0 * (X @ Y.T)
    return d.clamp_min_(0.0) if not d.requires_grad else d.clamp_min(0.0)


def median_gamma(
    X: Any,
    Y: Any | None = None,
    *,
    max_samples: int = 2000,
    seed: int = 0,
) -> float:
    """Return the median heuristic ``gamma = 1 / median ||x_i - x_j||^2``.

    The median runs over distinct pairs (i < j) of the pooled samples ``X`` (and ``Y``); with
    more than ``max_samples`` samples, a seeded random subset of ``max_samples`` is used, so
    the cost stays O(max_samples² d). No gradient flows through the result.

    Parameters
    ----------
    X, Y : array-like of shape (n, d), (m, d)
        Samples; ``Y`` is pooled with ``X`` when given.
    max_samples : int, default=2000
        Subsample size above which the median is estimated on a random subset.
    seed : int, default=0
        Seed of the subset.

    Returns
    -------
    gamma : float
        ``1 / median``; 1.0 when every distance is zero (all samples identical).
    """
    Z = as_tensor(X).detach()
    if Y is not None:
        Z = torch.cat([Z, as_tensor(Y, dtype=Z.dtype, device=Z.device).detach()])
    if len(Z) > max_samples:
        gen = torch.Generator().manual_seed(seed)
        Z = Z[torch.randperm(len(Z), generator=gen)[:max_samples].to(Z.device)]
    if len(Z) < 2:
        return 1.0
    d = sq_dists(Z, Z)
    iu = torch.triu_indices(len(Z), len(Z), offset=1, device=Z.device)
    med = float(d[iu[0], iu[1]].median())
    return 1.0 / med if med > 0 else 1.0


def _check_kernel(kernel: str, gamma: float | None, degree: int) -> None:
    if kernel not in KERNELS:
        raise ConfigError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if gamma is not None and not gamma > 0:
        raise ConfigError(f"kernel gamma must be > 0 (or null for the default), got {gamma}")
    if kernel == "polynomial" and (int(degree) != degree or degree < 1):
        raise ConfigError(f"polynomial degree must be an integer >= 1, got {degree}")


def _resolve_gamma(kernel: str, gamma: float | None, X: torch.Tensor, Y: torch.Tensor) -> float:
    if gamma is not None or kernel == "linear":
        return gamma if gamma is not None else 1.0
    if kernel == "rbf":
        return median_gamma(X, None if Y is X else Y)
    return 1.0 / X.shape[1]  # polynomial: scikit-learn's default


def _kernel_block(
    X: torch.Tensor, Y: torch.Tensor, kernel: str, gamma: float, degree: int, coef0: float
) -> torch.Tensor:
    if kernel == "linear":
        return X @ Y.T
    if kernel == "rbf":
        if X.requires_grad or Y.requires_grad:
            return torch.exp(-gamma * sq_dists(X, Y))
        # in place: an n x m kernel is memory-bound, so every temporary of that size counts
        K = X @ Y.T
        K.mul_(-2.0).add_((X * X).sum(1)[:, None]).add_((Y * Y).sum(1)[None, :])
        return K.clamp_(min=0.0).mul_(-gamma).exp_()
    return (gamma * (X @ Y.T) + coef0) ** degree


def pairwise_kernel(
    X: Any,
    Y: Any | None = None,
    *,
    kernel: str = "rbf",
    gamma: float | None = None,
    degree: int = 3,
    coef0: float = 1.0,
    block_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Compute the kernel matrix ``K[i, j] = k(x_i, y_j)``.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Samples (numpy, scipy sparse or torch).
    Y : array-like of shape (m, d), optional
        Second set of samples; default ``X``.
    kernel : {"linear", "rbf", "polynomial"}, default="rbf"
        See the module docstring.
    gamma : float, optional
        RBF / polynomial scale. ``None``: the median heuristic for ``rbf`` (on ``X`` and ``Y``
        pooled), ``1 / d`` for ``polynomial``.
    degree : int, default=3
        Polynomial degree.
    coef0 : float, default=1.0
        Polynomial offset.
    block_size : int, optional
        Compute the matrix ``block_size`` rows of ``X`` at a time (bounds the temporary memory
        of the rbf distances to ``block_size x m``).
    dtype : torch.dtype, optional
        Computation dtype (see :func:`as_tensor`); ``torch.float64`` for exact solvers.
    device : torch.device or str, optional
        Computation device (default: that of ``X``).

    Returns
    -------
    K : Tensor of shape (n, m)
        Differentiable with respect to tensor inputs that require grad.
    """
    _check_kernel(kernel, gamma, degree)
    Xt = as_tensor(X, dtype=dtype, device=device)
    Yt = Xt if Y is None else as_tensor(Y, dtype=Xt.dtype, device=Xt.device)
    if Xt.shape[1] != Yt.shape[1]:
        raise DataError(f"kernel inputs differ in feature count: {Xt.shape[1]} vs {Yt.shape[1]}")
    g = _resolve_gamma(kernel, gamma, Xt, Yt)
    if block_size is None or block_size >= len(Xt):
        return _kernel_block(Xt, Yt, kernel, g, degree, coef0)
    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    blocks = [
        _kernel_block(Xt[i : i + block_size], Yt, kernel, g, degree, coef0)
        for i in range(0, len(Xt), block_size)
    ]
    return torch.cat(blocks)


def _kernel_sums(
    X: torch.Tensor,
    Y: torch.Tensor,
    kernel: str,
    gammas: Sequence[float],
    weights: Sequence[float],
    degree: int,
    coef0: float,
    block_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over all entries and trace of the weighted kernel matrix between X and Y (blocked)."""
    total = X.new_zeros(())
    trace = X.new_zeros(())
    step = len(X) if block_size is None else block_size
    for i in range(0, len(X), step):
        Xb = X[i : i + step]
        for g, w in zip(gammas, weights, strict=True):
            Kb = _kernel_block(Xb, Y, kernel, g, degree, coef0)
            total = total + w * Kb.sum()
            if Y is X:
                trace = trace + w * torch.diagonal(Kb, offset=i).sum()
    return total, trace


def _mmd2_from_kernel(
    X: torch.Tensor,
    Y: torch.Tensor,
    kernel: str,
    gammas: Sequence[float],
    weights: Sequence[float],
    degree: int,
    coef0: float,
    estimator: str,
    block_size: int | None,
) -> torch.Tensor:
    n, m = len(X), len(Y)
    if estimator == "linear":
        # Gretton et al. 2012, Lemma 14: h((x1,y1),(x2,y2)) = k(x1,x2) + k(y1,y2) - k(x1,y2)
        # - k(x2,y1) averaged over floor(min(n, m) / 2) disjoint pairs; O(n) time and memory.
        p = min(n, m) // 2
        if p < 1:
            raise DataError("the linear-time MMD estimate needs at least 2 samples per domain")
        x1, x2, y1, y2 = X[0 : 2 * p : 2], X[1 : 2 * p : 2], Y[0 : 2 * p : 2], Y[1 : 2 * p : 2]
        h = X.new_zeros(p)
        for g, w in zip(gammas, weights, strict=True):

            def k(a: torch.Tensor, b: torch.Tensor, g: float = g) -> torch.Tensor:
                if kernel == "linear":
                    return (a * b).sum(1)
                if kernel == "rbf":
                    return torch.exp(-g * ((a - b) ** 2).sum(1))
                return (g * (a * b).sum(1) + coef0) ** degree

            h = h + w * (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1))
        return h.mean()
    sxx, txx = _kernel_sums(X, X, kernel, gammas, weights, degree, coef0, block_size)
    syy, tyy = _kernel_sums(Y, Y, kernel, gammas, weights, degree, coef0, block_size)
    sxy, _ = _kernel_sums(X, Y, kernel, gammas, weights, degree, coef0, block_size)
    if estimator == "biased":
        return sxx / n**2 + syy / m**2 - 2.0 * sxy / (n * m)
    if n < 2 or m < 2:
        raise DataError("the unbiased MMD estimate needs at least 2 samples per domain")
    return (sxx - txx) / (n * (n - 1)) + (syy - tyy) / (m * (m - 1)) - 2.0 * sxy / (n * m)


def _prepare(
    X: Any, Y: Any, estimator: str, dtype: torch.dtype | None, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    if estimator not in MMD_ESTIMATORS:
        raise ConfigError(
            f"unknown MMD estimator {estimator!r}; choose one of {', '.join(MMD_ESTIMATORS)}"
        )
    Xt = as_tensor(X, dtype=dtype, device=device)
    Yt = as_tensor(Y, dtype=Xt.dtype, device=Xt.device)
    if Xt.shape[1] != Yt.shape[1]:
        raise DataError(f"MMD inputs differ in feature count: {Xt.shape[1]} vs {Yt.shape[1]}")
    if len(Xt) == 0 or len(Yt) == 0:
        raise DataError("MMD needs at least one sample per domain")
    return Xt, Yt


def mmd2(
    X: Any,
    Y: Any,
    *,
    kernel: str = "rbf",
    gamma: float | None = None,
    degree: int = 3,
    coef0: float = 1.0,
    estimator: str = "biased",
    block_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Squared maximum mean discrepancy between the samples ``X`` and ``Y``.

    MMD²(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y), estimated as named by ``estimator``
    (Gretton et al., JMLR 2012; see the module docstring).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Samples of the first distribution (e.g. the source).
    Y : array-like of shape (m, d)
        Samples of the second distribution (e.g. the target).
    kernel, gamma, degree, coef0
        The kernel (see :func:`pairwise_kernel`); ``gamma=None`` with ``rbf`` uses the median
        heuristic on ``X`` and ``Y`` pooled.
    estimator : {"biased", "unbiased", "linear"}, default="biased"
        V-statistic, U-statistic or linear-time estimate.
    block_size : int, optional
        Row-block size for the quadratic estimators (memory ``block_size x max(n, m)``).
    dtype, device
        Computation dtype and device (see :func:`as_tensor`).

    Returns
    -------
    mmd2 : Tensor
        A 0-d tensor, differentiable with respect to tensor inputs that require grad.
    """
    _check_kernel(kernel, gamma, degree)
    Xt, Yt = _prepare(X, Y, estimator, dtype, device)
    g = _resolve_gamma(kernel, gamma, Xt, Yt)
    return _mmd2_from_kernel(Xt, Yt, kernel, [g], [1.0], degree, coef0, estimator, block_size)


def mk_mmd2(
    X: Any,
    Y: Any,
    *,
    gammas: Sequence[float] | None = None,
    bandwidth_multipliers: Sequence[float] = DEFAULT_BANDWIDTH_MULTIPLIERS,
    weights: Sequence[float] | None = None,
    estimator: str = "biased",
    block_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Multi-kernel MMD² with a family of Gaussian kernels, as in DAN.

    k = sum_u beta_u exp(-gamma_u ||x - y||^2) with gamma_u = 1 / (multiplier_u * median), the
    median squared distance being taken on ``X`` and ``Y`` pooled and detached (no gradient flows
    through the bandwidth), re-estimated at every call, i.e. per batch (Long et al., ICML 2015).

    Parameters
    ----------
    X, Y : array-like of shape (n, d), (m, d)
        The two samples (e.g. a source and a target batch of features).
    gammas : sequence of float, optional
        Explicit rbf ``gamma`` of each kernel; overrides ``bandwidth_multipliers``.
    bandwidth_multipliers : sequence of float, default=(0.25, 0.5, 1, 2, 4)
        Squared bandwidths relative to the median squared distance.
    weights : sequence of float, optional
        Kernel weights beta_u (DAN's convex combination); default equal weights 1/U.
    estimator : {"biased", "unbiased", "linear"}, default="biased"
        As in :func:`mmd2` (DAN's paper uses the linear-time estimate).
    block_size, dtype, device
        As in :func:`mmd2`.

    Returns
    -------
    mmd2 : Tensor
        A 0-d tensor, differentiable with respect to tensor inputs.
    """
    Xt, Yt = _prepare(X, Y, estimator, dtype, device)
    if gammas is None:
        if not bandwidth_multipliers or any(not s > 0 for s in bandwidth_multipliers):
            raise ConfigError(f"bandwidth_multipliers must be > 0, got {bandwidth_multipliers}")
        base = median_gamma(Xt, Yt)
        gammas = [base / s for s in bandwidth_multipliers]
    elif not gammas or any(not g > 0 for g in gammas):
        raise ConfigError(f"every gamma must be > 0, got {gammas}")
    if weights is None:
        weights = [1.0 / len(gammas)] * len(gammas)
    if len(weights) != len(gammas) or any(w < 0 for w in weights):
        raise ConfigError(f"need {len(gammas)} non-negative kernel weights, got {weights}")
    return _mmd2_from_kernel(
        Xt, Yt, "rbf", list(gammas), list(weights), 3, 1.0, estimator, block_size
    )


def mmd2_diagnostic(
    X_source: Any, X_target: Any, *, max_samples: int = 500, seed: int = 0
) -> float:
    """Compute the cheap source-target MMD² that feature methods record before and after.

    Biased (V-statistic) MMD² with an rbf kernel whose ``gamma`` is the median heuristic of the
    space it is measured in (on the pooled subsets), so values in the input space and in a
    learned space are on a scale-free footing (kernel values in [0, 1]). Each domain is reduced
    to a seeded random subset of at most ``max_samples`` samples; float64 on the CPU; one pooled
    distance matrix serves both the median and the estimate.

    Parameters
    ----------
    X_source, X_target : array-like
        The two samples.
    max_samples : int, default=500
        Samples kept per domain.
    seed : int, default=0
        Seed of the subsets.

    Returns
    -------
    mmd2 : float
    """
    rng = np.random.default_rng(seed)
    parts = []
    for X in (X_source, X_target):
        t = as_tensor(X, dtype=torch.float64, device="cpu").detach()
        if len(t) > max_samples:
            t = t[torch.as_tensor(np.sort(rng.choice(len(t), max_samples, replace=False)))]
        parts.append(t)
    n = len(parts[0])
    P = torch.cat(parts)
    D = sq_dists(P, P)
    iu = torch.triu_indices(len(P), len(P), offset=1)
    med = float(D[iu[0], iu[1]].median()) if len(P) > 1 else 0.0
    K = torch.exp(-D / med) if med > 0 else torch.ones_like(D)
    value = float(K[:n, :n].mean() + K[n:, n:].mean() - 2.0 * K[:n, n:].mean())
    return value if math.isfinite(value) else float("nan")


def mk_mmd_test_statistics(h: Any) -> tuple[np.ndarray, np.ndarray]:
    """The statistics DAN's kernel weights are learned from: ``d`` and ``Q`` (float64).

    ``h[u, i] = g_{k_u}(z_i)`` is the linear-time MMD term of kernel ``k_u`` on the quad-tuple
    ``z_i = (x_{2i-1}, x_{2i}, y_{2i-1}, y_{2i})`` (Gretton et al. 2012, Lemma 14). Following
    Long et al. (ICML 2015, section 3; Gretton, Sriperumbudur, Sejdinovic, Strathmann,
    Balakrishnan, Pontil, Fukumizu, NIPS 2012):

    - ``d[u]`` is the linear-time estimate of MMD²_{k_u}, the mean of ``h[u]``;
    - ``Q[u, v] = mean_j gΔ_u(z̄_j) gΔ_v(z̄_j)`` over the pairs ``z̄_j = (z_{2j-1}, z_{2j})``
      of consecutive quad-tuples, with ``gΔ_u(z̄_j) = g_{k_u}(z_{2j-1}) - g_{k_u}(z_{2j})``:
      an unbiased estimate of twice the covariance of the ``g_{k_u}``.

    Parameters
    ----------
    h : array-like of shape (U, p)
        Per-kernel, per-quad-tuple terms (``p >= 2``); detached if a tensor.

    Returns
    -------
    d : ndarray of shape (U,)
    Q : ndarray of shape (U, U)
        Symmetric positive semi-definite.
    """
    if isinstance(h, torch.Tensor):
        h = h.detach().to("cpu", torch.float64).numpy()
    h = np.asarray(h, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] < 2:
        raise DataError(
            "learning kernel weights needs at least 2 quad-tuples, i.e. 4 samples per domain"
        )
    p2 = h.shape[1] // 2
    g_delta = h[:, 0 : 2 * p2 : 2] - h[:, 1 : 2 * p2 : 2]
    return h.mean(axis=1), g_delta @ g_delta.T / p2


def optimal_kernel_weights(d: Any, Q: Any, eps: float = 1e-3) -> np.ndarray | None:
    """Solve DAN's kernel-weight program ``min_b bᵀ(Q + eps I)b  s.t.  dᵀb = 1, b >= 0``.

    Long et al. (ICML 2015, section 3): the kernel weights that maximise the MK-MMD relative to
    the standard deviation of its linear-time estimate (the test power), ``eps`` (1e-3 in
    the paper) keeping the program well-posed.

    Solved exactly: with ``A = Q + eps I`` (positive definite), the bound-constrained problem
    ``min_{b >= 0} ½ bᵀAb - dᵀb`` is the non-negative least-squares problem
    ``min_{b >= 0} ||Lᵀb - L⁻¹d||²`` (``A = LLᵀ``, Cholesky), solved by
    :func:`scipy.optimize.nnls`; if its solution ``b0`` is non-zero, ``b0 / dᵀb0`` meets the
    KKT conditions of the program above (the multiplier of the equality being
    ``2 / dᵀb0 > 0``, those of the bounds ``2 (A b0 - d) / dᵀb0 >= 0``), hence solves it,
    since it is convex. ``b0 = 0`` exactly when no ``d_u`` is positive: then no ``b >= 0`` has
    ``dᵀb = 1`` and ``None`` is returned.

    Parameters
    ----------
    d : array-like of shape (U,)
        The per-kernel MMD² estimates.
    Q : array-like of shape (U, U)
        Their (scaled) covariance, symmetric positive semi-definite.
    eps : float, default=1e-3
        Ridge added to ``Q``.

    Returns
    -------
    beta : ndarray of shape (U,) or None
        The solution (``dᵀbeta = 1``, ``beta >= 0``), or ``None`` when the program is
        infeasible. DAN rescales it to sum to 1 (the ratio it maximises is scale-free).
    """
    from scipy.linalg import cho_factor, solve_triangular
    from scipy.optimize import nnls

    d = np.asarray(d, dtype=np.float64).ravel()
    Q = np.asarray(Q, dtype=np.float64)
    if Q.shape != (len(d), len(d)):
        raise DataError(f"Q must be {len(d)} x {len(d)} for {len(d)} kernels, got {Q.shape}")
    if not eps > 0:
        raise ConfigError(f"eps must be > 0, got {eps}")
    if not (np.isfinite(d).all() and np.isfinite(Q).all()):
        return None
    A = 0.5 * (Q + Q.T) + eps * np.eye(len(d))
    L, _ = cho_factor(A, lower=True)
    L = np.tril(L)
    b0, _ = nnls(L.T, solve_triangular(L, d, lower=True), maxiter=50 * max(len(d), 1))
    scale = float(d @ b0)
    if not scale > 0:
        return None
    return b0 / scale
