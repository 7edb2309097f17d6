"""Kernel Mean Matching (KMM): reweight the source so that its kernel mean matches the target's.

Huang, Smola, Gretton, Borgwardt, Schölkopf, "Correcting Sample Selection Bias by Unlabeled
Data", NIPS 19 (2006, proceedings 2007). The weights ``beta`` of the ``n_s`` source samples solve
the quadratic program (eq. 6 of the paper)

    minimise    1/2 beta^T K beta - kappa^T beta
    subject to  0 <= beta_i <= B,   |sum_i beta_i - n_s| <= n_s * eps,

with ``K_ij = k(x_i, x_j)`` on the source and ``kappa_i = (n_s / n_t) sum_j k(x_i, x'_j)`` over
the ``n_t`` target samples; the default ``eps = (sqrt(n_s) - 1) / sqrt(n_s)`` is the paper's.
A classifier is then trained on the source with ``sample_weight = beta``.

The solver (:func:`solve_kmm_qp`) is exact: accelerated projected gradient (FISTA with
adaptive restart, O'Donoghue & Candès 2015) whose projection onto the box-and-slab feasible set
is computed exactly (a sorted breakpoint search for the slab multiplier), interleaved with
primal-dual active-set Newton steps (Hintermüller, Ito, Kunisch 2003) on the current free set,
each taken with an exact line search so that the objective never increases. It stops when the
relative KKT residual (the projected-gradient mapping, see :func:`kkt_residual`) falls below
``tol``, never after a fixed small number of iterations. Kernel matrices are built in row blocks
(``block_size``), so ``n_s = n_t = 20,000`` needs the 3.2 GB of ``K`` (float64) and little more.

Deviations from the paper
-------------------------
- The paper leaves the QP solver open (its experiments used a generic QP solver); ours is the
  first-order / active-set method above, stopped on a KKT tolerance (default 1e-6 relative).
- No batching: the whole source is one QP. ADAPT's ``max_size=1000`` solves independent blocks
  of 1000 source samples, which is a different (approximate) problem; tlbench offers no such
  option.
- When the target is so far from the source that every ``kappa_i`` underflows to (almost) zero,
  the QP no longer says anything about the target; KMM warns and returns uniform weights
  (``beta = 1``) instead of a degenerate solution.
- Labeled target samples, if the task has any, join the training set with weight 1 (the
  :class:`~tlbench.methods.base.ReweightingMethod` convention); the paper has none.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from ...errors import ConfigError
from ...kernels import KERNELS, as_tensor, median_gamma, pairwise_kernel
from ...registry import register_method
from ...task import TransferTask
from ..base import ReweightingMethod, make_estimator

try:
    from typing import Self
except ImportError:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["KMM", "kkt_residual", "kmm_objective", "project_box_slab", "solve_kmm_qp"]


# --------------------------------------------------------------------------- the QP


def project_box_slab(v: torch.Tensor, upper: float, lower_sum: float, upper_sum: float):
    """Euclidean projection of ``v`` onto ``{0 <= b <= upper, lower_sum <= sum(b) <= upper_sum}``.

    The projection is ``clip(v - nu, 0, upper)`` for the scalar ``nu`` that puts the sum on the
    violated side of the slab (``nu = 0`` when the clipped vector already satisfies it). The sum
    ``g(nu) = sum clip(v_i - nu, 0, upper)`` is piecewise linear and non-increasing with
    breakpoints ``v_i - upper`` and ``v_i``; it is evaluated at all breakpoints at once (one
    sort, one cumulative sum) and solved exactly on the bracketing segment.

    Parameters
    ----------
    v : Tensor of shape (n,)
        The point to project.
    upper : float
        The box bound ``B``.
    lower_sum, upper_sum : float
        The slab ``[n_s (1 - eps), n_s (1 + eps)]``; needs ``0 <= lower_sum <= upper_sum``
        and ``lower_sum <= n * upper``.

    Returns
    -------
    b : Tensor of shape (n,)
        The projection.
    """
    b = v.clamp(0.0, upper)
    s = float(b.sum())
    if lower_sum <= s <= upper_sum:
        return b
    target = lower_sum if s < lower_sum else upper_sum
    n = v.numel()
    t, order = torch.cat([v - upper, v]).sort()
    ones = torch.ones_like(v)
    # slope of -g just after each breakpoint: entering the free range (+1) or leaving it (-1)
    free = torch.cat([ones, -ones])[order].cumsum(0)
    g = n * upper - torch.cat([t.new_zeros(1), (free[:-1] * t.diff()).cumsum(0)])
    k = min(max(int((g >= target).sum()) - 1, 0), 2 * n - 2)
    slope = float(free[k])
    nu = float(t[k]) + ((float(g[k]) - target) / slope if slope > 0 else 0.0)
    b = (v - nu).clamp(0.0, upper)
    # one Newton step on the exact sum removes the rounding of the cumulative sums
    n_free = int(((b > 0) & (b < upper)).sum())
    if n_free:
        b = (v - nu + (float(b.sum()) - target) / -n_free).clamp(0.0, upper)
    return b


def kmm_objective(beta: torch.Tensor, K: torch.Tensor, kappa: torch.Tensor) -> float:
    """The KMM objective ``1/2 beta^T K beta - kappa^T beta``."""
    return 0.5 * float(beta @ (K @ beta)) - float(kappa @ beta)


def kkt_residual(
    beta: torch.Tensor,
    grad: torch.Tensor,
    upper: float,
    lower_sum: float,
    upper_sum: float,
    step: float,
    scale: float,
) -> float:
    """Relative KKT residual: ``||beta - P(beta - step * grad)||_inf / (step * scale)``.

    The projected-gradient mapping is zero exactly at the KKT points of a convex problem over
    a convex set; dividing by ``step`` puts it in gradient units and by ``scale`` (``max
    |kappa|``) makes it relative.
    """
    proj = project_box_slab(beta - step * grad, upper, lower_sum, upper_sum)
    return float((beta - proj).abs().max()) / (step * scale)


def _cholesky_solve(A: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    # Kernel sub-matrices are often numerically singular: add the smallest jitter that lets
    # the factorisation through (its effect on the gradient is checked by the KKT residual).
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    jitter = 1e-13 * float(A.diagonal().abs().max().clamp_min(1e-300))
    for _ in range(8):
        chol, info = torch.linalg.cholesky_ex(A + jitter * eye)
        if int(info) == 0:
            return torch.cholesky_solve(rhs, chol)
        jitter *= 100.0
    return torch.linalg.lstsq(A, rhs).solution


def _active_set_candidate(
    beta: torch.Tensor,
    grad: torch.Tensor,
    K: torch.Tensor,
    kappa: torch.Tensor,
    upper: float,
    lower_sum: float,
    upper_sum: float,
    step: float,
    max_free: int,
) -> tuple[torch.Tensor, float] | None:
    """One primal-dual active-set step: predict the bounds, solve the free set exactly.

    Returns the (possibly infeasible) iterate and the slab multiplier, or ``None`` when the
    free set is empty or too large to factorise.
    """
    z = beta - step * grad
    at_upper = z >= upper
    free_idx = (~((z <= 0) | at_upper)).nonzero().squeeze(1)
    up_idx = at_upper.nonzero().squeeze(1)
    m = free_idx.numel()
    if m == 0 or m > max_free:
        return None
    rows = K.index_select(0, free_idx)
    rhs = kappa[free_idx]
    if up_idx.numel():
        rhs = rhs - upper * rows.index_select(1, up_idx).sum(1)
    sol = _cholesky_solve(
        rows.index_select(1, free_idx), torch.stack([rhs, torch.ones_like(rhs)], 1)
    )
    x0, w = sol[:, 0], sol[:, 1]
    total = float(x0.sum()) + upper * up_idx.numel()
    nu = 0.0  # the slab multiplier, when the free solution's sum leaves the slab
    if not lower_sum <= total <= upper_sum and float(w.sum()) > 0:
        nu = (total - (lower_sum if total < lower_sum else upper_sum)) / float(w.sum())
    cand = torch.zeros_like(beta)
    cand[up_idx] = upper
    cand[free_idx] = x0 - nu * w
    if not bool(torch.isfinite(cand).all()):
        return None
    return cand, nu


def solve_kmm_qp(
    K: torch.Tensor,
    kappa: torch.Tensor,
    *,
    upper: float,
    lower_sum: float,
    upper_sum: float,
    tol: float = 1e-6,
    max_iter: int = 10000,
    warm_start: int = 20,
    newton_iter: int = 30,
    max_free: int = 3000,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Solve the KMM QP ``min 1/2 b^T K b - kappa^T b`` over the box-and-slab feasible set.

    The set is ``{0 <= b <= upper, lower_sum <= sum(b) <= upper_sum}``.

    Three phases: ``warm_start`` accelerated projected-gradient iterations guess the active
    bounds; up to ``newton_iter`` primal-dual active-set steps solve the free set exactly
    (accepted only while they lower the objective; on well-conditioned kernels they end at the
    exact optimum); accelerated projected gradient then runs until the KKT residual is below
    ``tol``.

    Parameters
    ----------
    K : Tensor of shape (n, n)
        Symmetric positive semi-definite matrix (the source kernel matrix).
    kappa : Tensor of shape (n,)
        Linear term.
    upper : float
        Box bound ``B`` (> 0).
    lower_sum, upper_sum : float
        Bounds on the sum of the weights.
    tol : float, default=1e-6
        Stop when :func:`kkt_residual` is below ``tol``.
    max_iter : int, default=10000
        Cap on projected-gradient iterations (one product with ``K`` each); reaching it is
        reported in ``converged``, not hidden.
    warm_start : int, default=20
        Projected-gradient iterations before the active-set phase.
    newton_iter : int, default=30
        Cap on active-set steps (0 disables them).
    max_free : int, default=3000
        Largest free set an active-set step factorises (Cholesky); larger ones skip the phase.

    Returns
    -------
    beta : Tensor of shape (n,)
        The weights.
    info : dict
        ``objective``, ``kkt_residual``, ``iterations`` (projected-gradient), ``newton_steps``,
        ``converged``, ``lipschitz`` (the step-size constant used).
    """
    n = kappa.numel()
    scale = max(float(kappa.abs().max()), float(K.diagonal().abs().max()), 1e-300)
    state = {"newton_steps": 0, "iterations": 0}

    def objective(x: torch.Tensor, Kx: torch.Tensor) -> float:
        return 0.5 * float(x @ Kx) - float(kappa @ x)

    x = project_box_slab(torch.ones_like(kappa), upper, lower_sum, upper_sum)
    Kx = K @ x
    # Step size 1/L: start from a Rayleigh-quotient estimate of the largest eigenvalue; the
    # exact curvature test in the loop raises L whenever a step shows it was too small.
    u = Kx / Kx.norm().clamp_min(1e-300)
    L = max(float(u @ (K @ u)), float(K.diagonal().max()), 1e-300) * 1.01

    def fista(x: torch.Tensor, Kx: torch.Tensor, iters: int, L: float):
        y, Ky, t = x, Kx, 1.0
        f = objective(x, Kx)
        residual = math.inf
        for _ in range(iters):
            state["iterations"] += 1
            grad_y = Ky - kappa
            xn = project_box_slab(y - grad_y / L, upper, lower_sum, upper_sum)
            Kxn = K @ xn
            d = xn - y
            dd = float(d @ d)
            curvature = float(d @ (Kxn - Ky))
            if curvature > L * dd * (1 + 1e-9):  # L was below the curvature met: raise it
                L = max(2.0 * L, curvature / dd)
                y, Ky, t = x, Kx, 1.0
                continue
            fn = objective(xn, Kxn)
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            if float(grad_y @ (xn - x)) > 0 or fn > f:  # adaptive restart of the momentum
                y, Ky, t_next = xn, Kxn, 1.0
            else:
                mom = (t - 1.0) / t_next
                y, Ky = xn + mom * (xn - x), Kxn + mom * (Kxn - Kx)
            x, Kx, t, f = xn, Kxn, t_next, fn
            residual = kkt_residual(x, Kx - kappa, upper, lower_sum, upper_sum, 1.0 / L, scale)
            if residual <= tol:
                break
        return x, Kx, L, residual

    x, Kx, L, residual = fista(x, Kx, min(warm_start, max_iter), L)
    if residual > tol and newton_iter:
        # Primal-dual active set: the bound prediction uses the natural step 1 / max K_ii.
        step = 1.0 / max(float(K.diagonal().max()), 1e-300)
        best = (objective(x, Kx), x, Kx)
        previous, worse = None, 0
        cur, grad = x, Kx - kappa
        for _ in range(newton_iter):
            # PDAS iterates are infeasible and not monotone: follow them, score their
            # projections, keep the best, stop at a fixed point of the predicted bounds or
            # after eight steps without improvement (ill-conditioned kernels).
            out = _active_set_candidate(
                cur, grad, K, kappa, upper, lower_sum, upper_sum, step, max_free
            )
            if out is None:
                break
            cand, nu = out
            proj = project_box_slab(cand, upper, lower_sum, upper_sum)
            Kp = K @ proj
            fc = objective(proj, Kp)
            state["newton_steps"] += 1
            if fc < best[0]:
                best, worse = (fc, proj, Kp), 0
            else:
                worse += 1
                if worse >= 8:
                    break
            support = ((cand > 0) & (cand < upper)).cpu().numpy().tobytes()
            if support == previous:
                break
            previous, cur = support, cand
            grad = K @ cand - kappa + nu
        _, x, Kx = best
        residual = kkt_residual(x, Kx - kappa, upper, lower_sum, upper_sum, 1.0 / L, scale)
    if residual > tol:
        x, Kx, L, residual = fista(x, Kx, max_iter - state["iterations"], L)
    if not bool(torch.isfinite(x).all()):  # pragma: no cover - defensive, never seen
        raise FloatingPointError("KMM solver produced non-finite weights")
    info = {
        "objective": objective(x, Kx),
        "kkt_residual": residual,
        "iterations": state["iterations"],
        "newton_steps": state["newton_steps"],
        "converged": residual <= tol,
        "lipschitz": L,
        "n": n,
    }
    return x, info


# --------------------------------------------------------------------------- the method


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None


@register_method("kmm")
class KMM(ReweightingMethod):
    """Kernel Mean Matching (Huang et al., NIPS 2006): exact QP weights, then a weighted classifier.

    Parameters
    ----------
    kernel : {"rbf", "linear", "polynomial"}, default="rbf"
        The kernel (see :mod:`tlbench.kernels`).
    gamma : float, optional
        Kernel scale; ``None``: the median heuristic on the pooled source and target (rbf),
        ``1 / n_features`` (polynomial).
    degree : int, default=3
        Polynomial degree.
    coef0 : float, default=1.0
        Polynomial offset.
    B : float, default=1000.0
        Upper bound of every weight (the paper's ``B``; ADAPT's default 1000).
    eps : float, optional
        Slab half-width: ``|sum(beta) - n_s| <= n_s * eps``; ``None``: the paper's
        ``(sqrt(n_s) - 1) / sqrt(n_s)``. Must lie in (0, 1).
    tol : float, default=1e-6
        Relative KKT residual at which the solver stops.
    max_iter : int, default=10000
        Solver iteration cap (a warning says when it is reached).
    estimator : str or estimator, default="logreg"
        Classifier trained with the weights: ``logreg``, ``linear_svm`` or any scikit-learn
        classifier whose ``fit`` accepts ``sample_weight``. ``knn1`` cannot use weights and is
        refused.
    block_size : int, optional
        Rows of the kernel matrices computed at a time (default: 2048).
    device : str, default="auto"
        Torch device of the kernel and the solver (``auto``: CUDA when available).
    random_state : int, optional
        Seed of the classifier (and of the median-heuristic subsample).

    Attributes
    ----------
    weights_ : ndarray of shape (n_source,)
        The source weights ``beta``.
    gamma_ : float
        The kernel scale used.
    diagnostics_ : dict
        Weight summary and solver report: ``ess`` (effective sample size
        ``(sum beta)^2 / sum beta^2``), ``ess_fraction``, ``max_weight``, ``mean_weight``,
        ``zero_weights``, ``objective``, ``kkt_residual``, ``iterations``, ``newton_steps``,
        ``converged``, ``kernel_seconds``, ``solver_seconds``.
    estimator_ : sklearn classifier
        The fitted weighted classifier.
    """

    paper: ClassVar[str] = (
        "Huang, Smola, Gretton, Borgwardt, Schölkopf. Correcting Sample Selection Bias by "
        "Unlabeled Data. NIPS 2006"
    )

    def __init__(
        self,
        *,
        kernel: str = "rbf",
        gamma: float | None = None,
        degree: int = 3,
        coef0: float = 1.0,
        B: float = 1000.0,
        eps: float | None = None,
        tol: float = 1e-6,
        max_iter: int = 10000,
        estimator: Any = "logreg",
        block_size: int | None = None,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.B = B
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.estimator = estimator
        self.block_size = block_size
        self.device = device
        self.random_state = random_state

    def _validate(self) -> None:
        if self.kernel not in KERNELS:
            raise ConfigError(f"unknown kernel {self.kernel!r}; choose one of {', '.join(KERNELS)}")
        if self.gamma is not None and not (np.isfinite(self.gamma) and self.gamma > 0):
            raise ConfigError(f"kmm: gamma must be > 0 (or null for the default), got {self.gamma}")
        if not (np.isfinite(self.B) and self.B > 0):
            raise ConfigError(f"kmm: the weight bound B must be > 0, got {self.B}")
        if self.eps is not None and not 0 < self.eps < 1:
            raise ConfigError(f"kmm: eps must lie in (0, 1), got {self.eps}")
        if not self.tol > 0:
            raise ConfigError(f"kmm: tol must be > 0, got {self.tol}")
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ConfigError(f"kmm: max_iter must be a positive integer, got {self.max_iter}")
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"kmm: block_size must be >= 1, got {self.block_size}")
        est = make_estimator(self.estimator, self.random_state)
        from sklearn.utils.validation import has_fit_parameter

        if not has_fit_parameter(est, "sample_weight"):
            raise ConfigError(
                f"kmm: estimator {self.estimator!r} cannot use sample weights, so it would "
                "ignore the KMM weights; choose logreg, linear_svm or a classifier whose fit "
                "accepts sample_weight"
            )

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Check the configuration, compute the weights, fit the weighted classifier."""
        self._validate()
        return super().fit(task, trainer)

    def compute_weights(self, task: TransferTask) -> np.ndarray:
        """Solve the KMM quadratic program; return one weight per source sample."""
        device = _resolve_device(self.device)
        Xs = as_tensor(task.source.X, dtype=torch.float64, device=device)
        Xt = as_tensor(task.target.X, dtype=torch.float64, device=device)
        ns, nt = len(Xs), len(Xt)
        eps = (math.sqrt(ns) - 1.0) / math.sqrt(ns) if self.eps is None else float(self.eps)
        lower_sum, upper_sum = ns * (1.0 - eps), ns * (1.0 + eps)
        if lower_sum > ns * self.B:
            raise ConfigError(
                f"kmm: B={self.B} is too small: even beta = B everywhere sums to {ns * self.B:g}"
                f" < n_s (1 - eps) = {lower_sum:g}"
            )
        start = time.perf_counter()
        gamma = self.gamma
        if gamma is None and self.kernel == "rbf":
            gamma = median_gamma(Xs, Xt, seed=0 if self.random_state is None else self.random_state)
        elif gamma is None and self.kernel == "polynomial":
            gamma = 1.0 / Xs.shape[1]
        self.gamma_ = None if self.kernel == "linear" else float(gamma)
        kw = {"kernel": self.kernel, "gamma": gamma, "degree": self.degree, "coef0": self.coef0}
        block = self.block_size or 2048
        # K is the only n_s x n_s object; it is filled (and kappa summed) block by block so the
        # temporaries stay block x n. float64: the KKT test needs more than float32's 7 digits.
        K = torch.empty(ns, ns, dtype=torch.float64, device=device)
        kappa = torch.empty(ns, dtype=torch.float64, device=device)
        for i in range(0, ns, block):
            K[i : i + block] = pairwise_kernel(Xs[i : i + block], Xs, **kw)
            kappa[i : i + block] = pairwise_kernel(Xs[i : i + block], Xt, **kw).sum(1)
        kappa *= ns / nt
        kernel_seconds = time.perf_counter() - start

        start = time.perf_counter()
        kscale = float(K.diagonal().abs().max())
        if not bool(torch.isfinite(K).all() and torch.isfinite(kappa).all()):
            raise FloatingPointError(
                "kmm: the kernel overflowed (non-finite values); lower gamma or degree, or "
                "scale the features"
            )
        if float(kappa.abs().max()) <= 1e-10 * ns * max(kscale, 1e-300):
            warnings.warn(
                "kmm: the target is far from every source sample (kappa underflows to ~0), "
                "so the QP carries no information about the target; using uniform weights. "
                "A smaller gamma (wider kernel) may help.",
                RuntimeWarning,
                stacklevel=3,
            )
            beta = torch.ones(ns, dtype=torch.float64)
            info = {
                "objective": float("nan"),
                "kkt_residual": 0.0,
                "iterations": 0,
                "newton_steps": 0,
                "converged": True,
                "underflow": True,
            }
        else:
            beta, info = solve_kmm_qp(
                K,
                kappa,
                upper=float(self.B),
                lower_sum=lower_sum,
                upper_sum=upper_sum,
                tol=float(self.tol),
                max_iter=int(self.max_iter),
            )
            info["underflow"] = False
            if not info["converged"]:
                warnings.warn(
                    f"kmm: the solver stopped at max_iter={self.max_iter} with KKT residual "
                    f"{info['kkt_residual']:.2e} > tol={self.tol}",
                    RuntimeWarning,
                    stacklevel=3,
                )
        solver_seconds = time.perf_counter() - start
        weights = beta.cpu().numpy()
        ess = float(weights.sum() ** 2 / max(float((weights**2).sum()), 1e-300))
        objective = info["objective"]
        self.diagnostics_ = {
            "ess": ess,
            "ess_fraction": ess / ns,
            "max_weight": float(weights.max()),
            "mean_weight": float(weights.mean()),
            "zero_weights": int((weights == 0).sum()),
            "objective": None if not np.isfinite(objective) else objective,
            "kkt_residual": float(info["kkt_residual"]),
            "iterations": int(info["iterations"]),
            "newton_steps": int(info["newton_steps"]),
            "converged": bool(info["converged"]),
            "kappa_underflow": bool(info["underflow"]),
            "gamma": self.gamma_,
            "eps": eps,
            "kernel_seconds": kernel_seconds,
            "solver_seconds": solver_seconds,
        }
        return weights
