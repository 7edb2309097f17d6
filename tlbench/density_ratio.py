"""Density-ratio estimation: ``w(x) = p_target(x) / p_source(x)`` from unlabeled samples.

Sugiyama, Suzuki, Kanamori, *Density Ratio Estimation in Machine Learning*, Cambridge
University Press, 2012. Three estimators with one interface, ``fit(X_source, X_target)``
returning ``self`` and ``ratio(X)`` (or calling the estimator) returning ``w`` at ``X``; the
instance-reweighting methods ``kliep`` and ``ulsif`` and the ``iwv`` / ``dev`` selection
protocols (:func:`tlbench.selection.density_ratio`) all go through them:

``logistic`` (:class:`LogisticRatio`)
    A logistic domain classifier (Bickel, Brückner, Scheffer, "Discriminative Learning for
    Differing Training and Test Distributions", ICML 2007): the odds ``P(target | x) /
    P(source | x)`` times ``n_source / n_target``, clipped to [1e-3, 1e3]. The estimator the
    selection protocols have always used (same numbers).
``kliep`` (:class:`KLIEPRatio`)
    Sugiyama, Nakajima, Kashima, von Bünau, Kawanabe, "Direct Importance Estimation with
    Model Selection and Its Application to Covariate Shift Adaptation", NIPS 2007; Sugiyama,
    Suzuki, Nakajima, Kashima, von Bünau, Kawanabe, "Direct importance estimation for
    covariate shift adaptation", AISM 60 (2008) 699-746. ``w(x) = sum_l alpha_l
    exp(-||x - c_l||^2 / (2 sigma^2))`` with centres ``c_l`` drawn from the target, and
    ``alpha`` maximises ``mean_t log w(x)`` subject to ``mean_s w(x) = 1``, ``alpha >= 0``;
    ``sigma`` by likelihood cross-validation over the target samples (LCV, AISM 2008 Sec. 2.4).
``ulsif`` (:class:`ULSIFRatio`)
    Kanamori, Hido, Sugiyama, "A Least-squares Approach to Direct Importance Estimation",
    JMLR 10 (2009) 1391-1445. The same basis, fitted by least squares: ``alpha = max(0, (H +
    lambda I)^-1 h)`` with ``H = Phi_s^T Phi_s / n_s`` and ``h = mean_t Phi_t``; ``sigma`` and
    ``lambda`` minimise the paper's analytic leave-one-out score (its Sec. 3.4 and the authors'
    ``uLSIF.m``) of ``J = 1/2 mean_s w^2 - mean_t w``.

The KLIEP problem is solved exactly: :func:`solve_kliep` stops on a *certified* optimality gap.
With ``g = mean_t Phi_t(x) / w(x)`` the gradient of the objective at a feasible ``alpha``, the
optimum is the point where ``max_l g_l / b_l = 1`` (``b = mean_s Phi_s``), and concavity bounds
the objective's distance to the optimum by ``max_l g_l / b_l - 1``; ``gap_`` reports it.

Sparse input is densified for ``kliep`` and ``ulsif`` (the Gaussian basis needs squared
distances; a few thousand samples of a few thousand features fit in memory); ``logistic``
keeps it sparse.

Deviations from the papers
--------------------------
- KLIEP's solver. The paper's projected gradient ascent (AISM 2008 Fig. 1: a gradient step,
  then ``alpha += (1 - b^T alpha) b / b^T b``, ``alpha = max(0, alpha)``, ``alpha /= b^T
  alpha``, with a step ``epsilon``; the authors' ``KLIEP.m`` takes at most 100 improving steps
  for each ``epsilon`` in ``10^3, 10^2, ..., 10^-3``) is not a projection once some
  ``alpha_l`` is clipped to 0, so its fixed points depend on ``epsilon``, and it crawls on
  ill-conditioned bases. ``solver="gradient"`` keeps the paper's scheme with the exact
  Euclidean projection onto ``{alpha >= 0, b^T alpha = 1}`` and a Barzilai-Borwein step with a
  non-monotone line search (spectral projected gradient, Birgin, Martínez, Raydan 2000);
  even so, 20,000 iterations
  leave a certified gap of 1.5e-5 on 10-d Gaussians and 1.0 on Office-Caltech's raw SURF
  counts, at 40-190 times the time of the default (``experiments/benchmarks/
  density_ratio.py``). The default ``solver="sqp"`` solves the same problem by sequential
  quadratic programming (mix-SQP, Kim, Carbonetto, Stephens, Anitescu, JCGS 2020: in ``beta_l
  = alpha_l b_l`` it is the mixture-proportion likelihood on the simplex) in 1-20 Newton
  steps. Both stop on the certified gap above (``tol``).
- The width grid. The papers leave the candidates open; the authors' ``KLIEP.m`` searches
  ``sigma`` downwards from 10 in steps of 1, 0.1, ..., 1e-5 while the LCV score improves,
  drawing new folds for every candidate, and ``uLSIF.m`` tries ``logspace(-3, 1, 9)``, both
  in the data's absolute units. Ours are multiples (``sigma_grid``, default ``2^-2 ... 2^2``
  in steps of ``sqrt 2``) of the median distance between pooled source and target samples
  (at most 1000 of them, seeded; the median heuristic of
  :func:`tlbench.kernels.median_gamma`), so the grid follows the features' scale, and the
  LCV folds are drawn once for all candidates. The uLSIF ``lambda`` grid is ``uLSIF.m``'s
  ``logspace(-3, 1, 9)`` (rounded to 3 digits).
- Centres whose kernel mass on the source underflows to 0 (``b_l = 0``) would make KLIEP's
  problem unbounded; they get ``alpha_l = 0`` (``dropped_centers_`` counts them). Target
  samples that no centre reaches (``w = 0`` for every ``alpha``) are left out of the
  optimisation, whose objective would be ``-inf`` for every ``alpha``; ``objective_`` still
  counts them (``-inf``), and LCV scores a width at which a held-out target sample gets
  ``w = 0`` as ``-inf``.
- uLSIF's leave-one-out pairs ``min(n_s, n_t)`` source and target samples as the paper does,
  drawn by a seeded permutation rather than taken in data order (a sorted data set would
  otherwise hold out one class).
- ``LogisticRatio`` is not from the KLIEP/uLSIF papers; it is the selection protocols' old
  estimator, kept bit for bit.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.optimize import nnls
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .errors import ConfigError, DataError

__all__ = [
    "ESTIMATORS",
    "KLIEPRatio",
    "LogisticRatio",
    "REGULARIZATION_GRID",
    "SIGMA_GRID",
    "ULSIFRatio",
    "check_estimator_name",
    "gaussian_basis",
    "kliep_gap",
    "kliep_objective",
    "make_ratio_estimator",
    "project_weighted_simplex",
    "solve_kliep",
    "sq_distances",
    "ulsif_alpha",
    "ulsif_loocv",
    "weight_summary",
]

#: Registry of the estimator names (``selection.density_ratio``, :func:`make_ratio_estimator`).
ESTIMATORS: tuple[str, ...] = ("logistic", "kliep", "ulsif")
#: Default kernel widths, as multiples of the median pairwise distance: 2^-2 ... 2^2, ratio sqrt 2.
SIGMA_GRID: tuple[float, ...] = (0.25, 0.35, 0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0)
#: Default uLSIF regularisation candidates: uLSIF.m's logspace(-3, 1, 9), rounded.
REGULARIZATION_GRID: tuple[float, ...] = (1e-3, 3.16e-3, 1e-2, 3.16e-2, 0.1, 0.316, 1.0, 3.16, 10.0)
KLIEP_SOLVERS: tuple[str, ...] = ("sqp", "gradient")


# --------------------------------------------------------------------------- shared helpers


def _flat(X: Any) -> Any:
    """Samples as a 2-D float64 array (sparse matrices stay sparse)."""
    if sp.issparse(X):
        return X
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(len(X), -1)


def _dense(X: Any, what: str) -> np.ndarray:
    """Samples as a dense 2-D float64 array with finite entries (sparse input is densified)."""
    X = _flat(X.toarray() if sp.issparse(X) else X)
    if X.shape[0] == 0:
        raise DataError(f"{what}: no samples")
    if not np.isfinite(X).all():
        raise DataError(f"{what}: the samples contain NaN or infinite values")
    return X


def sq_distances(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``||x_i - c_l||^2`` of shape ``(len(X), len(C))``."""
    # the expansion is one GEMM; clipping removes the small negatives its rounding leaves
    D = (X * X).sum(1)[:, None] + (C * C).sum(1)[None, :] - 2.0 * (X @ C.T)
    return np.maximum(D, 0.0, out=D)


def gaussian_basis(sq_dist: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian basis ``exp(-||x - c||^2 / (2 sigma^2))`` from squared distances."""
    return np.exp(sq_dist * (-0.5 / (sigma * sigma)))


def weight_summary(weights: np.ndarray) -> dict[str, float | int]:
    """Summary of sample weights: ESS ``(sum w)^2 / sum w^2``, its fraction, max, mean, zeros."""
    w = np.asarray(weights, dtype=np.float64)
    ess = float(w.sum() ** 2 / max(float(np.sum(w * w)), 1e-300))
    return {
        "ess": ess,
        "ess_fraction": ess / len(w),
        "max_weight": float(w.max()),
        "mean_weight": float(w.mean()),
        "zero_weights": int(np.sum(w == 0)),
    }


def _finite_or_none(x: float | None) -> float | None:
    # records are JSON: -inf / nan (a width at which held-out samples get w = 0) become null
    return None if x is None or not math.isfinite(x) else float(x)


def _positive(value: Any, name: str, who: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and value > 0):
        extra = " (or null for the cross-validated grid)" if allow_none else ""
        raise ConfigError(f"{who}: {name} must be a number > 0{extra}, got {value!r}")


def _grid(values: Any, name: str, who: str) -> list[float]:
    try:
        grid = [float(v) for v in values]
    except (TypeError, ValueError):
        grid = []
    if not grid or not all(math.isfinite(v) and v > 0 for v in grid):
        raise ConfigError(f"{who}: {name} must be a non-empty list of numbers > 0, got {values!r}")
    return grid


def _count(value: Any, name: str, who: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"{who}: {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{who}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _median_distance(
    Xs: np.ndarray, Xt: np.ndarray, rng: np.random.Generator, max_samples: int = 1000
) -> float:
    """Median distance between distinct pooled samples, on at most ``max_samples`` of them."""
    Z = np.vstack([Xs, Xt])
    if len(Z) > max_samples:
        Z = Z[rng.choice(len(Z), max_samples, replace=False)]
    D = sq_distances(Z, Z)[np.triu_indices(len(Z), k=1)]
    med = float(np.median(D)) if D.size else 0.0
    return math.sqrt(med) if med > 0 else 1.0


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread.

    The products here have ``b = 100`` columns: threads gain little on them, and where the
    cores are shared (the 2-core CI machines running a second job) they made a fit 10x slower.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


class RatioEstimator(BaseEstimator):
    """Base class: ``fit(X_source, X_target) -> self``, ``ratio(X)``, ``estimator(X)``."""

    name: ClassVar[str] = ""

    def fit(self, X_source: Any, X_target: Any) -> Self:  # pragma: no cover - abstract
        """Estimate ``p_target / p_source`` from samples of both."""
        raise NotImplementedError

    def ratio(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        """The estimated ratio at the samples ``X``."""
        raise NotImplementedError

    def __call__(self, X: Any) -> np.ndarray:
        """Same as :meth:`ratio`."""
        return self.ratio(X)

    def summary(self) -> dict[str, Any]:
        """What a record keeps of the fit (JSON-friendly)."""
        return {"density_ratio": self.name}


# --------------------------------------------------------------------------- logistic


class LogisticRatio(RatioEstimator):
    """``x -> p_target(x) / p_source(x)`` from a logistic domain classifier (Bickel et al. 2007).

    The odds ``P(target | x) / P(source | x)`` of an L2-regularised logistic regression
    separating the samples are rescaled by ``n_source / n_target`` so that the ratio averages
    to about 1 on source samples; it is clipped to ``clip`` so that one sample far outside the
    source cannot take all the weight.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 penalty of the classifier.
    clip : tuple of float, default=(1e-3, 1e3)
        Bounds of the returned ratio.
    max_iter : int, default=2000
        lbfgs iteration cap.
    random_state : int, optional
        Seed passed to the classifier.

    Attributes
    ----------
    classifier_ : LogisticRegression
        The fitted domain classifier (class 1 = target).
    prior_ : float
        ``n_source / n_target``.

    References
    ----------
    Bickel, Brückner, Scheffer. Discriminative Learning for Differing Training and Test
    Distributions. ICML 2007.
    """

    name: ClassVar[str] = "logistic"

    def __init__(
        self,
        *,
        C: float = 1.0,
        clip: tuple[float, float] = (1e-3, 1e3),
        max_iter: int = 2000,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.clip = clip
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X_source: Any, X_target: Any) -> Self:
        """Fit the domain classifier on the stacked samples (sparse input stays sparse)."""
        from sklearn.linear_model import LogisticRegression

        _positive(self.C, "C", "logistic")
        lo, hi = (float(c) for c in self.clip)
        if not 0 <= lo < hi:
            raise ConfigError(
                f"logistic: clip must be (low, high) with 0 <= low < high, got {self.clip!r}"
            )
        max_iter = _count(self.max_iter, "max_iter", "logistic", 1)
        Xs, Xt = _flat(X_source), _flat(X_target)
        stack = sp.vstack if sp.issparse(Xs) or sp.issparse(Xt) else np.vstack
        X = stack([Xs, Xt])
        d = np.r_[np.zeros(Xs.shape[0]), np.ones(Xt.shape[0])]
        self.classifier_ = LogisticRegression(
            C=self.C, max_iter=max_iter, random_state=self.random_state
        ).fit(X, d)
        self.prior_ = Xs.shape[0] / Xt.shape[0]
        self.clip_ = (lo, hi)
        return self

    def ratio(self, X: Any) -> np.ndarray:
        """``clip(prior * p / (1 - p))`` with ``p = P(target | x)``."""
        check_is_fitted(self, "classifier_")
        p = self.classifier_.predict_proba(_flat(X))[:, 1]
        return np.clip(self.prior_ * p / np.clip(1 - p, 1e-12, None), *self.clip_)


# --------------------------------------------------------------------------- KLIEP


def project_weighted_simplex(v: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{alpha >= 0, b^T alpha = 1}`` (``b > 0``).

    The projection is ``max(0, v - tau b)`` for the ``tau`` at which ``b^T`` of it is 1; the
    sum is piecewise linear in ``tau`` with breakpoints ``v_l / b_l``, solved exactly after
    one sort.
    """
    t = v / b
    order = np.argsort(-t, kind="stable")
    tau = (np.cumsum((b * v)[order]) - 1.0) / np.cumsum((b * b)[order])
    k = int(np.flatnonzero(t[order] > tau)[-1]) if np.any(t[order] > tau) else 0
    return np.maximum(v - tau[k] * b, 0.0)


def kliep_objective(A: np.ndarray, alpha: np.ndarray) -> float:
    """KLIEP's objective ``mean_t log(A alpha)`` (``-inf`` where ``A alpha`` has a zero)."""
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(A @ alpha)))


def kliep_gap(A: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> float:
    """Certified optimality gap ``max_l g_l / b_l - 1`` of ``alpha / (b^T alpha)``.

    ``g = A^T (1 / (A alpha)) / n_t`` is the gradient of :func:`kliep_objective`. Over the
    feasible set ``alpha^T g = 1``, so by concavity ``f(alpha*) - f(alpha) <= (alpha*)^T g - 1
    <= max_l g_l / b_l - 1``: the value bounds the distance to the optimal objective, and it is
    0 exactly at the optimum. Rows of ``A`` that are all zero are left out.
    """
    keep = A.max(1) > 0
    alpha = alpha / (b @ alpha)
    g = A[keep].T @ (1.0 / (A[keep] @ alpha)) / keep.sum()
    pos = b > 0
    return float(np.max(g[pos] / b[pos]) - 1.0)


def _kliep_sqp(At: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, dict]:
    """Mix-SQP on ``beta``: minimise ``-mean log(At beta) + sum(beta)`` over ``beta >= 0``.

    The penalty ``sum(beta)`` replaces the constraint ``sum(beta) = 1``: the objective of
    ``c beta`` is that of ``beta`` plus ``log c - c sum(beta)``, maximised at ``c sum(beta) =
    1``, so both problems have the same solution. Each step minimises the quadratic model over
    ``beta >= 0`` exactly (a non-negative least-squares problem in the Cholesky factor of the
    Hessian) and backtracks along the segment to it.
    """
    n, m = At.shape
    x = np.full(m, 1.0 / m)
    Ax = At @ x
    phi = -np.mean(np.log(Ax)) + x.sum()
    gap, it = math.inf, 0
    for it in range(max_iter + 1):  # noqa: B007 (it is reported)
        r = 1.0 / Ax
        grad_f = At.T @ r / n
        gap = float(x.sum() * grad_f.max() - 1.0)  # the certificate at x / sum(x)
        if gap <= tol or it == max_iter:
            break
        g = 1.0 - grad_f
        M = At * r[:, None]
        H = M.T @ M / n
        # jitter: the columns of nearby centres are numerically collinear, H singular
        jitter = 1e-12 * max(float(H.diagonal().max()), 1e-300)
        for _ in range(8):
            try:
                R = scipy.linalg.cholesky(H + jitter * np.eye(m), lower=False)
                break
            except np.linalg.LinAlgError:
                jitter *= 100.0
        else:
            break  # not even a jittered factor (never seen): stop, unconverged, with the gap
        # the quadratic model's minimiser over y >= 0: 1/2 y^T H y + c^T y = 1/2 ||R y - z||^2
        # + const with R^T z = -c, a non-negative least-squares problem
        c = g - H @ x
        z = scipy.linalg.solve_triangular(R, -c, trans="T")
        try:
            d = nnls(R, z, maxiter=50 * m)[0] - x
        except RuntimeError:  # nnls' iteration cap (never seen): stop, unconverged
            break
        slope = min(float(g @ d), 0.0)
        t, accepted = 1.0, False
        while t >= 1e-12:
            xn = x + t * d  # a convex combination of x >= 0 and the QP solution >= 0
            Axn = At @ xn
            if np.all(Axn > 0):
                phin = -np.mean(np.log(Axn)) + xn.sum()
                if phin <= phi + 1e-2 * t * slope:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:  # round-off level: the gap is as small as float64 allows
            break
        x, Ax, phi = xn, Axn, phin
    return x / x.sum(), {"iterations": it, "gap": gap}


def _kliep_gradient(
    A: np.ndarray, b: np.ndarray, tol: float, max_iter: int, memory: int = 10
) -> tuple[np.ndarray, dict]:
    """The paper's projected gradient ascent, with the exact projection and a BB step.

    Spectral projected gradient (Birgin, Martínez, Raydan 2000): direction ``P(alpha +
    lambda g) - alpha`` with the Barzilai-Borwein ``lambda``, non-monotone Armijo backtracking
    over the last ``memory`` objective values.
    """
    n, m = A.shape
    a = project_weighted_simplex(np.ones(m), b)
    Aa = A @ a
    f = float(np.mean(np.log(Aa)))
    g = A.T @ (1.0 / Aa) / n
    history = [f]
    lam = 1.0 / max(float(np.abs(project_weighted_simplex(a + g, b) - a).max()), 1e-12)
    gap, it = math.inf, 0
    for it in range(max_iter + 1):  # noqa: B007 (it is reported)
        gap = float(np.max(g / b) - 1.0)
        if gap <= tol or it == max_iter:
            break
        d = project_weighted_simplex(a + lam * g, b) - a
        gd = float(g @ d)
        ref = max(history[-memory:])
        t = 1.0
        while True:
            an = a + t * d
            Aan = A @ an
            fn = float(np.mean(np.log(Aan))) if np.all(Aan > 0) else -math.inf
            if fn >= ref + 1e-4 * t * gd or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12:
            break
        gn = A.T @ (1.0 / Aan) / n
        s, y = an - a, g - gn
        sy = float(s @ y)
        lam = min(max(float(s @ s) / sy, 1e-10), 1e10) if sy > 0 else 1e10
        a, Aa, f, g = an, Aan, fn, gn
        history.append(f)
    return a, {"iterations": it, "gap": gap}


def solve_kliep(
    A: np.ndarray,
    b: np.ndarray,
    *,
    solver: str = "sqp",
    tol: float = 1e-6,
    max_iter: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Maximise ``mean_t log(A alpha)`` subject to ``b^T alpha = 1``, ``alpha >= 0``.

    Parameters
    ----------
    A : ndarray of shape (n_target, n_centers)
        The basis at the target samples, ``A[j, l] = phi_l(x_j)``.
    b : ndarray of shape (n_centers,)
        The basis averaged over the source samples, ``b_l = mean_s phi_l(x)``.
    solver : {"sqp", "gradient"}, default="sqp"
        Sequential quadratic programming, or the paper's projected gradient ascent (see the
        module docstring).
    tol : float, default=1e-6
        Stop when the certified gap (:func:`kliep_gap`) is at most ``tol``.
    max_iter : int, optional
        Iteration cap; default 200 (sqp) or 20000 (gradient).

    Returns
    -------
    alpha : ndarray of shape (n_centers,)
        The coefficients, ``b^T alpha = 1`` up to round-off.
    info : dict
        ``objective``, ``gap``, ``iterations``, ``converged``, ``constraint_residual``
        (``|b^T alpha - 1|``), ``dropped_centers`` (``b_l = 0``), ``unreached_rows``.
    """
    if solver not in KLIEP_SOLVERS:
        raise ConfigError(
            f"kliep: unknown solver {solver!r}; choose one of {', '.join(KLIEP_SOLVERS)}"
        )
    max_iter = (200 if solver == "sqp" else 20000) if max_iter is None else int(max_iter)
    m = A.shape[1]
    cols = (b > 0) & np.isfinite(b)
    with np.errstate(divide="ignore", over="ignore"):
        scaled = A[:, cols] / b[cols]
    cols[cols] = np.isfinite(scaled).all(0)
    rows = A[:, cols].max(1) > 0 if cols.any() else np.zeros(len(A), dtype=bool)
    if not rows.any():
        raise DataError(
            "kliep: no target sample is reached by a centre with kernel mass on the source; "
            "the kernel width is too small"
        )
    alpha = np.zeros(m)
    Ar = A[np.ix_(rows, cols)]
    if solver == "sqp":
        beta, info = _kliep_sqp(Ar / b[cols], tol, max_iter)
        alpha[cols] = beta / b[cols]
    else:
        alpha[cols], info = _kliep_gradient(Ar, b[cols], tol, max_iter)
    alpha /= b @ alpha  # exact feasibility (the solvers are feasible up to round-off)
    info.update(
        objective=kliep_objective(A, alpha),
        gap=kliep_gap(A, b, alpha),
        constraint_residual=abs(float(b @ alpha) - 1.0),
        dropped_centers=int(m - cols.sum()),
        unreached_rows=int(len(A) - rows.sum()),
    )
    info["converged"] = info["gap"] <= tol
    return alpha, info


class _GaussianBasisRatio(RatioEstimator):
    """Shared parts of KLIEP and uLSIF: centres, distances, the width grid, ``ratio``."""

    def fit(self, X_source: Any, X_target: Any) -> Self:
        """Choose the hyperparameters by the estimator's cross-validation, then fit on all."""
        with _one_blas_thread():
            return self._fit(X_source, X_target)

    def _fit(self, X_source: Any, X_target: Any) -> Self:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, X_source: Any, X_target: Any) -> tuple:
        who = self.name
        n_centers = _count(self.n_centers, "n_centers", who, 1)
        _positive(self.sigma, "sigma", who, allow_none=True)
        grid = _grid(self.sigma_grid, "sigma_grid", who)
        Xs = _dense(X_source, f"{who}: X_source")
        Xt = _dense(X_target, f"{who}: X_target")
        if Xs.shape[1] != Xt.shape[1]:
            raise DataError(
                f"{who}: source and target have {Xs.shape[1]} and {Xt.shape[1]} features"
            )
        rng = np.random.default_rng(self.random_state)
        b = min(n_centers, len(Xt))
        self.centers_ = Xt[np.sort(rng.choice(len(Xt), b, replace=False))]
        D_s = sq_distances(Xs, self.centers_)
        D_t = sq_distances(Xt, self.centers_)
        if self.sigma is None:
            self.median_distance_ = _median_distance(Xs, Xt, rng)
            sigmas = [g * self.median_distance_ for g in grid]
        else:
            self.median_distance_ = None
            sigmas = [float(self.sigma)]
        self.sigmas_ = np.asarray(sigmas)
        return Xs, Xt, D_s, D_t, rng

    def ratio(self, X: Any) -> np.ndarray:
        """``w(x) = sum_l alpha_l exp(-||x - c_l||^2 / (2 sigma^2))``."""
        check_is_fitted(self, "alpha_")
        X = _dense(X, f"{self.name}: X")
        return gaussian_basis(sq_distances(X, self.centers_), self.sigma_) @ self.alpha_


class KLIEPRatio(_GaussianBasisRatio):
    """KLIEP (Sugiyama et al., NIPS 2007 / AISM 2008): likelihood-maximising Gaussian basis.

    ``w(x) = sum_l alpha_l exp(-||x - c_l||^2 / (2 sigma^2))``, ``alpha`` maximising
    ``mean_t log w(x)`` subject to ``mean_s w(x) = 1`` and ``alpha >= 0``; without a fixed
    ``sigma``, likelihood cross-validation (LCV) over the target samples picks it from
    ``sigma_grid``: for each of ``n_folds`` folds, fit on the other folds and score ``mean
    log w`` on the held-out one; the best mean score wins, and the final fit uses every sample.

    Parameters
    ----------
    n_centers : int, default=100
        Number of Gaussian centres ``b``, drawn without replacement from the target samples
        (all of them when there are fewer).
    sigma : float, optional
        Kernel width ``sigma``; ``None``: chosen by LCV from ``sigma_grid``.
    sigma_grid : sequence of float, default=:data:`SIGMA_GRID`
        Candidate widths as multiples of the median pairwise distance.
    n_folds : int, default=5
        Folds of the LCV (``R`` in the paper, which uses 5).
    solver : {"sqp", "gradient"}, default="sqp"
        See :func:`solve_kliep`.
    tol : float, default=1e-6
        Certified optimality gap at which the solver stops (bounds the objective's distance
        to the optimum).
    max_iter : int, optional
        Solver iteration cap (default 200 for sqp, 20000 for gradient).
    random_state : int, optional
        Seed of the centres, the folds and the median-distance subsample.

    Attributes
    ----------
    centers_ : ndarray of shape (n_centers, n_features)
        The centres ``c_l``.
    alpha_ : ndarray of shape (n_centers,)
        The coefficients.
    sigma_ : float
        The width used.
    sigmas_ : ndarray
        The candidate widths (absolute).
    cv_scores_ : ndarray
        LCV score (mean held-out log w, higher is better) of each candidate (``nan`` without
        cross-validation); ``cv_score_`` is the chosen one's.
    objective_ : float
        ``mean_t log w`` on all target samples.
    constraint_residual_ : float
        ``|mean_s w - 1|``.
    gap_ : float
        Certified optimality gap of the final fit.
    n_iter_ : int
        Solver iterations of the final fit.
    converged_ : bool
        Whether ``gap_ <= tol``.
    median_distance_ : float or None
        The grid's unit (``None`` with a fixed ``sigma``).
    dropped_centers_ : int
        Centres with no kernel mass on the source (``alpha_l = 0``).

    References
    ----------
    Sugiyama, Nakajima, Kashima, von Bünau, Kawanabe. Direct Importance Estimation with Model
    Selection and Its Application to Covariate Shift Adaptation. NIPS 2007.
    Sugiyama, Suzuki, Nakajima, Kashima, von Bünau, Kawanabe. Direct importance estimation for
    covariate shift adaptation. Annals of the Institute of Statistical Mathematics 60, 2008.
    """

    name: ClassVar[str] = "kliep"

    def __init__(
        self,
        *,
        n_centers: int = 100,
        sigma: float | None = None,
        sigma_grid: Sequence[float] = SIGMA_GRID,
        n_folds: int = 5,
        solver: str = "sqp",
        tol: float = 1e-6,
        max_iter: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_centers = n_centers
        self.sigma = sigma
        self.sigma_grid = sigma_grid
        self.n_folds = n_folds
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, X_source: Any, X_target: Any) -> Self:
        start = time.perf_counter()
        n_folds = _count(self.n_folds, "n_folds", "kliep", 2)
        if self.solver not in KLIEP_SOLVERS:
            raise ConfigError(
                f"kliep: unknown solver {self.solver!r}; choose one of {', '.join(KLIEP_SOLVERS)}"
            )
        _positive(self.tol, "tol", "kliep")
        if self.max_iter is not None:
            _count(self.max_iter, "max_iter", "kliep", 1)
        Xs, Xt, D_s, D_t, rng = self._prepare(X_source, X_target)
        solve = {"solver": self.solver, "tol": float(self.tol), "max_iter": self.max_iter}
        scores = np.full(len(self.sigmas_), np.nan)
        if len(self.sigmas_) > 1:
            if len(Xt) < n_folds:
                raise DataError(
                    f"kliep: LCV needs at least n_folds={n_folds} target samples, got {len(Xt)}"
                )
            folds = np.array_split(rng.permutation(len(Xt)), n_folds)
            for i, sigma in enumerate(self.sigmas_):
                A, b = gaussian_basis(D_t, sigma), gaussian_basis(D_s, sigma).mean(0)
                fold_scores = []
                for held in folds:
                    train = np.ones(len(Xt), dtype=bool)
                    train[held] = False
                    try:
                        alpha, _ = solve_kliep(A[train], b, **solve)
                    except DataError:  # no training sample reached: this width cannot fit
                        fold_scores.append(-math.inf)
                        continue
                    fold_scores.append(kliep_objective(A[held], alpha))
                scores[i] = np.mean(fold_scores)
            if not np.isfinite(scores).any():
                warnings.warn(
                    "kliep: every width gives some held-out target sample w = 0; using the largest",
                    RuntimeWarning,
                    stacklevel=3,
                )
                best = len(self.sigmas_) - 1
            else:
                best = int(np.argmax(scores))  # finite or -inf, never nan
        else:
            best = 0
        self.cv_scores_ = scores
        self.cv_score_ = float(scores[best])
        self.sigma_ = float(self.sigmas_[best])
        A, b = gaussian_basis(D_t, self.sigma_), gaussian_basis(D_s, self.sigma_).mean(0)
        self.alpha_, info = solve_kliep(A, b, **solve)
        self.objective_ = info["objective"]
        self.constraint_residual_ = info["constraint_residual"]
        self.gap_ = info["gap"]
        self.n_iter_ = int(info["iterations"])
        self.converged_ = bool(info["converged"])
        self.dropped_centers_ = info["dropped_centers"]
        if not self.converged_:
            warnings.warn(
                f"kliep: the {self.solver} solver stopped with optimality gap "
                f"{self.gap_:.2e} > tol={self.tol}",
                RuntimeWarning,
                stacklevel=3,
            )
        self.seconds_ = time.perf_counter() - start
        return self

    def summary(self) -> dict[str, Any]:
        """Chosen width, LCV scores, objective, constraint residual, solver report."""
        check_is_fitted(self, "alpha_")
        return {
            "density_ratio": self.name,
            "sigma": self.sigma_,
            "median_distance": self.median_distance_,
            "sigma_grid": self.sigmas_.tolist(),
            "cv_score": _finite_or_none(self.cv_score_),
            "cv_scores": [_finite_or_none(s) for s in self.cv_scores_],
            "objective": _finite_or_none(self.objective_),
            "constraint_residual": self.constraint_residual_,
            "gap": self.gap_,
            "iterations": self.n_iter_,
            "converged": self.converged_,
            "solver": self.solver,
            "n_centers": len(self.centers_),
            "dropped_centers": self.dropped_centers_,
            "seconds": self.seconds_,
        }


# --------------------------------------------------------------------------- uLSIF


def ulsif_alpha(
    Phi_source: np.ndarray, Phi_target: np.ndarray, regularization: float
) -> np.ndarray:
    """The uLSIF closed form ``max(0, (H + lambda I)^-1 h)`` (Kanamori et al. 2009).

    ``H = Phi_s^T Phi_s / n_s``, ``h = mean_t Phi_t``; rows are samples, columns basis
    functions.
    """
    H = Phi_source.T @ Phi_source / len(Phi_source)
    h = Phi_target.mean(0)
    H.flat[:: H.shape[0] + 1] += regularization
    alpha = scipy.linalg.solve(H, h, assume_a="pos")
    return np.maximum(alpha, 0.0)


def ulsif_loocv(
    Phi_source: np.ndarray,
    Phi_target: np.ndarray,
    regularizations: Sequence[float],
    n_pairs: int | None = None,
) -> np.ndarray:
    """Analytic leave-one-out score of uLSIF per ``lambda`` (Kanamori et al. 2009, Sec. 3.4).

    The ``i``-th source and ``i``-th target samples (``i < n_pairs``, default ``min(n_s,
    n_t)``) are left out together; Sherman-Morrison gives every left-out solution
    ``alpha^(i) = max(0, (H^(i) + lambda I)^-1 h^(i))`` at once, and the score is ``mean_i [
    w^(i)(x_i^s)^2 / 2 - w^(i)(x_i^t)]`` (lower is better). One eigendecomposition of ``H``
    serves every ``lambda``.

    Parameters
    ----------
    Phi_source, Phi_target : ndarray of shape (n_s, b), (n_t, b)
        The basis at the source and target samples (the estimator shuffles their rows, so
        that the pairs are random).
    regularizations : sequence of float
        The candidates ``lambda``.
    n_pairs : int, optional
        Pairs left out, at most ``min(n_s, n_t)``.

    Returns
    -------
    scores : ndarray of shape (len(regularizations),)
    """
    ns, nt = len(Phi_source), len(Phi_target)
    if min(ns, nt) < 2:
        raise DataError("ulsif: leave-one-out needs at least 2 source and 2 target samples")
    n = min(ns, nt) if n_pairs is None else min(int(n_pairs), ns, nt)
    H = Phi_source.T @ Phi_source / ns
    h = Phi_target.mean(0)
    e, V = np.linalg.eigh(H)
    e = np.maximum(e, 0.0)
    Ks, Kt = Phi_source[:n].T, Phi_target[:n].T  # (b, n): columns are the left-out samples
    Vs, Vt, vh = V.T @ Ks, V.T @ Kt, V.T @ h
    scores = []
    for lam in regularizations:
        # B = H + lambda (n_s - 1) / n_s I: the left-out H^(i) + lambda I, up to the factor and
        # the rank-one term Sherman-Morrison adds back (the authors' uLSIF.m)
        inv = 1.0 / (e + float(lam) * (ns - 1) / ns)
        diag_s = np.sum(inv[:, None] * Vs * Vs, 0)  # k_i^T B^-1 k_i
        denom = ns - diag_s
        c0 = ((vh * inv) @ Vs) / denom  # h^T B^-1 k_i / denom
        c1 = np.sum(inv[:, None] * Vt * Vs, 0) / denom  # k'_i^T B^-1 k_i / denom
        inner = nt * vh[:, None] + Vs * (nt * c0 - c1) - Vt
        B2 = np.maximum((ns - 1) / (ns * (nt - 1)) * (V @ (inv[:, None] * inner)), 0.0)
        w_s, w_t = np.sum(Ks * B2, 0), np.sum(Kt * B2, 0)
        scores.append(float(np.mean(w_s**2) / 2 - np.mean(w_t)))
    return np.asarray(scores)


class ULSIFRatio(_GaussianBasisRatio):
    """uLSIF (Kanamori, Hido, Sugiyama, JMLR 2009): least-squares Gaussian-basis ratio.

    ``w(x) = sum_l alpha_l exp(-||x - c_l||^2 / (2 sigma^2))`` with ``alpha = max(0, (H +
    lambda I)^-1 h)``, ``H = Phi_s^T Phi_s / n_s``, ``h = mean_t Phi_t``: the minimiser of
    the squared loss ``J = 1/2 mean_s w^2 - mean_t w`` plus ``lambda/2 ||alpha||^2``, then
    clipped. ``sigma`` and ``lambda``, unless both fixed, minimise the analytic leave-one-out
    score (:func:`ulsif_loocv`) over ``sigma_grid`` x ``regularization_grid``.

    Parameters
    ----------
    n_centers : int, default=100
        Number of Gaussian centres ``b``, drawn without replacement from the target samples.
    sigma : float, optional
        Kernel width; ``None``: chosen by LOOCV from ``sigma_grid``.
    sigma_grid : sequence of float, default=:data:`SIGMA_GRID`
        Candidate widths as multiples of the median pairwise distance.
    regularization : float, optional
        Ridge ``lambda``; ``None``: chosen by LOOCV from ``regularization_grid``.
    regularization_grid : sequence of float, default=:data:`REGULARIZATION_GRID`
        Candidate ``lambda`` values.
    random_state : int, optional
        Seed of the centres, the leave-one-out pairs and the median-distance subsample.

    Attributes
    ----------
    centers_ : ndarray of shape (n_centers, n_features)
        The centres.
    alpha_ : ndarray of shape (n_centers,)
        The coefficients.
    sigma_, regularization_ : float
        The values used.
    sigmas_ : ndarray
        The candidate widths (absolute).
    cv_scores_ : ndarray of shape (n_sigmas, n_regularizations)
        LOOCV scores (lower is better; ``nan`` without cross-validation); ``cv_score_`` is the
        chosen pair's.
    objective_ : float
        ``J = 1/2 mean_s w^2 - mean_t w`` of the final fit (training samples).
    median_distance_ : float or None
        The grid's unit (``None`` with a fixed ``sigma``).

    References
    ----------
    Kanamori, Hido, Sugiyama. A Least-squares Approach to Direct Importance Estimation. JMLR
    10, 2009.
    """

    name: ClassVar[str] = "ulsif"

    def __init__(
        self,
        *,
        n_centers: int = 100,
        sigma: float | None = None,
        sigma_grid: Sequence[float] = SIGMA_GRID,
        regularization: float | None = None,
        regularization_grid: Sequence[float] = REGULARIZATION_GRID,
        random_state: int | None = None,
    ) -> None:
        self.n_centers = n_centers
        self.sigma = sigma
        self.sigma_grid = sigma_grid
        self.regularization = regularization
        self.regularization_grid = regularization_grid
        self.random_state = random_state

    def _fit(self, X_source: Any, X_target: Any) -> Self:
        start = time.perf_counter()
        _positive(self.regularization, "regularization", "ulsif", allow_none=True)
        regs = _grid(self.regularization_grid, "regularization_grid", "ulsif")
        if self.regularization is not None:
            regs = [float(self.regularization)]
        self.regularizations_ = np.asarray(regs)
        Xs, Xt, D_s, D_t, rng = self._prepare(X_source, X_target)
        scores = np.full((len(self.sigmas_), len(regs)), np.nan)
        if scores.size > 1:
            # the pairs the leave-one-out removes together: a random min(n_s, n_t) of each
            ps, pt = rng.permutation(len(Xs)), rng.permutation(len(Xt))
            for i, sigma in enumerate(self.sigmas_):
                scores[i] = ulsif_loocv(
                    gaussian_basis(D_s[ps], sigma), gaussian_basis(D_t[pt], sigma), regs
                )
            i, j = np.unravel_index(int(np.nanargmin(scores)), scores.shape)
        else:
            i, j = 0, 0
        self.cv_scores_ = scores
        self.cv_score_ = float(scores[i, j])
        self.sigma_ = float(self.sigmas_[i])
        self.regularization_ = float(regs[j])
        Phi_s, Phi_t = gaussian_basis(D_s, self.sigma_), gaussian_basis(D_t, self.sigma_)
        self.alpha_ = ulsif_alpha(Phi_s, Phi_t, self.regularization_)
        w_s, w_t = Phi_s @ self.alpha_, Phi_t @ self.alpha_
        self.objective_ = float(0.5 * np.mean(w_s**2) - np.mean(w_t))
        self.seconds_ = time.perf_counter() - start
        return self

    def summary(self) -> dict[str, Any]:
        """Chosen width and regularisation, LOOCV scores, the squared-loss objective."""
        check_is_fitted(self, "alpha_")
        return {
            "density_ratio": self.name,
            "sigma": self.sigma_,
            "regularization": self.regularization_,
            "median_distance": self.median_distance_,
            "sigma_grid": self.sigmas_.tolist(),
            "regularization_grid": self.regularizations_.tolist(),
            "cv_score": _finite_or_none(self.cv_score_),
            "cv_scores": [[_finite_or_none(s) for s in row] for row in self.cv_scores_],
            "objective": self.objective_,
            "zero_coefficients": int(np.sum(self.alpha_ == 0)),
            "n_centers": len(self.centers_),
            "seconds": self.seconds_,
        }


# --------------------------------------------------------------------------- by name


def check_estimator_name(name: Any) -> None:
    """``name`` is one of :data:`ESTIMATORS`, else one :class:`ConfigError`."""
    if name not in ESTIMATORS:
        raise ConfigError(
            f"unknown density-ratio estimator {name!r}; choose one of {', '.join(ESTIMATORS)}"
        )


def make_ratio_estimator(
    name: str = "logistic", random_state: int | None = None, **params: Any
) -> RatioEstimator:
    """The unfitted estimator called ``name`` (:data:`ESTIMATORS`), seeded by ``random_state``.

    Parameters
    ----------
    name : {"logistic", "kliep", "ulsif"}, default="logistic"
        Which estimator.
    random_state : int, optional
        Its seed.
    **params
        Its other hyperparameters (defaults otherwise).

    Returns
    -------
    estimator : RatioEstimator
    """
    check_estimator_name(name)
    cls = {"logistic": LogisticRatio, "kliep": KLIEPRatio, "ulsif": ULSIFRatio}[name]
    return cls(random_state=random_state, **params)
