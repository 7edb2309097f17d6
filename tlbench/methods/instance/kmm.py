"""Kernel Mean Matching (KMM): reweight the source so that its kernel mean matches the target's.

Huang, Smola, Gretton, Borgwardt, Schölkopf, "Correcting Sample Selection Bias by Unlabeled
Data", NIPS 19 (2006, proceedings 2007). The weights ``beta`` of the ``n_s`` source samples solve
the quadratic program (eq. 6 of the paper)

    minimise    1/2 beta^T K beta - kappa^T beta
    subject to  0 <= beta_i <= B,   |sum_i beta_i - n_s| <= n_s * eps,

with ``K_ij = k(x_i, x_j)`` on the source and ``kappa_i = (n_s / n_t) sum_j k(x_i, x'_j)`` over
the ``n_t`` target samples; the default ``eps = (sqrt(n_s) - 1) / sqrt(n_s)`` is the paper's.
A classifier is then trained on the source with ``sample_weight = beta``.

The solver (:func:`solve_kmm_qp`) is exact: a primal-dual active-set method (Hintermüller,
Ito, Kunisch 2003) whose free set grows from the largest ``kappa_i``, each step solving the
Newton system of the free weights with a Cholesky factorisation that is partly reused from the
previous step, and stopping at a point with no KKT violation, i.e. the optimum up to
round-off and the threshold ``0.1 * tol`` on the multipliers. Its relative KKT residual (the
projected-gradient mapping, see :func:`kkt_residual`) is measured with the full gradient and
reported; should the active-set method cycle (never seen), accelerated projected gradient
takes over until the residual is below ``tol``. KMM solutions are sparse on most data, and the
solver reads ``K`` only through the rows of the weights that are, or once were, non-zero:
those rows are computed on demand (:class:`KernelRows`) and ``kappa`` is summed in row blocks,
so ``n_s = n_t = 20,000`` takes about 1.5 GB instead of the 3.2 GB of ``K`` (the whole
matrix is built only when more than half of its rows are needed).

Deviations from the paper
-------------------------
- The paper leaves the QP solver open (its experiments used a generic QP solver); ours is the
  active-set method above, stopped on a KKT tolerance (default 1e-6 relative).
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
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import numpy as np
import torch

from ...errors import ConfigError
from ...kernels import KERNELS, as_tensor, median_gamma, pairwise_kernel
from ...registry import register_method
from ...task import TransferTask
from ...trainer import method_device
from ..base import ReweightingMethod

__all__ = [
    "KMM",
    "KernelRows",
    "kkt_residual",
    "kmm_inputs",
    "kmm_objective",
    "project_box_slab",
    "solve_kmm_qp",
]


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
    |kappa|``) makes it relative. The mapping only grows as ``step`` shrinks, so a small step
    (the solver uses ``1 / trace(K)``, below ``1 / lambda_max(K)``) gives a strict measure.
    """
    proj = project_box_slab(beta - step * grad, upper, lower_sum, upper_sum)
    return float((beta - proj).abs().max()) / (step * scale)


@contextmanager
def _cpu_threads(device: torch.device, threads: int | None):
    """Run the block with ``threads`` intra-op threads on the CPU (no-op elsewhere / if None)."""
    old = torch.get_num_threads()
    change = device.type == "cpu" and threads is not None and threads != old
    if change:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


class KernelRows:
    """Rows of a symmetric kernel matrix ``K``, computed (or copied) when first needed.

    The active-set solver reads ``K`` only through the rows of the weights that are (or once
    were) non-zero: the gradient ``K beta`` is a combination of those rows, the Newton system
    a sub-matrix of them. KMM solutions are sparse on most data (10-30 % of the weights are
    non-zero on the benchmark's synthetic data, MNIST and Amazon reviews), so caching only
    those rows saves most of the kernel evaluations and of the memory traffic of every
    gradient. When more than ``max_cached`` rows are needed the whole matrix is materialised.

    Parameters
    ----------
    n : int
        Order of ``K``.
    fill : callable
        ``fill(idx, out)`` writes the rows ``K[idx]`` into ``out`` (shape ``(len(idx), n)``).
    diag : Tensor of shape (n,)
        The diagonal of ``K``.
    dense : Tensor of shape (n, n), optional
        ``K`` itself, when it exists already (no copy is made of it when all rows are needed).
    max_cached : int, optional
        Rows cached before switching to the whole matrix (default ``n // 2``).
    """

    def __init__(
        self,
        n: int,
        fill: Callable[[torch.Tensor, torch.Tensor], None],
        diag: torch.Tensor,
        *,
        dense: torch.Tensor | None = None,
        max_cached: int | None = None,
    ) -> None:
        self.n = n
        self.diag = diag
        self.device = diag.device
        self.dtype = diag.dtype
        self._fill = fill
        self._dense = dense
        self._max_cached = max(1, n // 2 if max_cached is None else max_cached)
        self._slot = torch.full((n,), -1, dtype=torch.long, device=self.device)
        self._buf = torch.empty(0, n, dtype=self.dtype, device=self.device)
        self._rows = 0
        self.full = False
        self.computed = 0  # rows computed or copied (the kernel cost actually paid)

    @classmethod
    def from_matrix(cls, K: torch.Tensor, **kwargs: Any) -> KernelRows:
        """Wrap an existing dense symmetric matrix (rows are copied into the cache)."""

        def fill(idx: torch.Tensor, out: torch.Tensor) -> None:
            torch.index_select(K, 0, idx, out=out)

        return cls(K.shape[0], fill, K.diagonal().clone(), dense=K, **kwargs)

    @classmethod
    def from_data(
        cls, X: torch.Tensor, *, block_size: int | None = None, **kernel: Any
    ) -> KernelRows:
        """Rows ``k(x_i, X)`` of the kernel matrix of the samples ``X``, in row blocks.

        ``kernel`` holds the keyword arguments of :func:`~tlbench.kernels.pairwise_kernel`
        (``kernel``, ``gamma``, ``degree``, ``coef0``); ``block_size`` rows are evaluated at a
        time (default: blocks of about a million entries).
        """
        n = len(X)
        block = block_size or _default_block(n)

        def fill(idx: torch.Tensor, out: torch.Tensor) -> None:
            for i in range(0, len(idx), block):
                out[i : i + block] = pairwise_kernel(X[idx[i : i + block]], X, **kernel)

        # the diagonal from small diagonal blocks (their off-diagonal entries are waste)
        diag = torch.cat(
            [
                pairwise_kernel(X[i : i + 32], X[i : i + 32], **kernel).diagonal()
                for i in range(0, n, 32)
            ]
        )
        return cls(n, fill, diag)

    def _materialise(self) -> None:
        if self._dense is None:
            dense = torch.empty(self.n, self.n, dtype=self.dtype, device=self.device)
            cached = (self._slot >= 0).nonzero().squeeze(1)
            missing = (self._slot < 0).nonzero().squeeze(1)
            dense.index_copy_(0, cached, self._buf[self._slot[cached]])
            self._buf = self._buf[:0]  # free the cache before filling the rest
            step = max(1, (1 << 22) // self.n)
            for i in range(0, missing.numel(), step):
                part = missing[i : i + step]
                block = torch.empty(part.numel(), self.n, dtype=self.dtype, device=self.device)
                self._fill(part, block)
                dense.index_copy_(0, part, block)
            self.computed += missing.numel()
            self._dense = dense
        self._buf = self._dense
        self._slot = torch.arange(self.n, device=self.device)
        self._rows = self.n
        self.full = True

    def _ensure(self, idx: torch.Tensor) -> None:
        if self.full:
            return
        new = idx[self._slot[idx] < 0]
        if not new.numel():
            return
        new = new.unique()
        need = self._rows + new.numel()
        if need > self._max_cached:
            self._materialise()
            return
        if not self._buf.shape[0]:  # (the operating system maps the pages when written)
            self._buf = torch.empty(self._max_cached, self.n, dtype=self.dtype, device=self.device)
        self._fill(new, self._buf[self._rows : need])
        self._slot[new] = torch.arange(self._rows, need, device=self.device)
        self._rows = need
        self.computed += new.numel()

    def sub(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The block ``K[rows][:, cols]``."""
        self._ensure(rows)
        flat = (self._slot[rows].unsqueeze(1) * self.n + cols).view(-1)
        return self._buf.view(-1).index_select(0, flat).view(rows.numel(), cols.numel())

    def combine(self, idx: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``K[:, idx] @ values`` (= ``sum_j values_j K[idx_j]``, ``K`` being symmetric)."""
        self._ensure(idx)
        coef = values.new_zeros(self._rows)
        coef[self._slot[idx]] = values
        return self._buf[: self._rows].T @ coef

    def matrix(self) -> torch.Tensor:
        """The whole matrix (materialised if needed)."""
        if not self.full:
            self._materialise()
        return self._buf


def _default_block(n_cols: int) -> int:
    # About 2^20 entries (8 MB in float64) per block: the block's temporaries stay in cache,
    # and there are few enough blocks that the per-call overhead does not show.
    return max(8, (1 << 20) // max(n_cols, 1))


class _FreeFactor:
    """Cholesky factor of ``K[F, F]`` for the active-set steps, reused from step to step.

    The free weights are kept in an order, largest weight first, and the factor is that of
    ``K[order][:, order] + jitter I`` (a jitter of 1e-13 of the largest diagonal entry, raised
    until the factorisation goes through: kernel sub-matrices are often numerically
    singular; its effect on the gradient is measured by the KKT residual). Weights leave the
    free set when they turn negative, so mostly from the small end: when the free set
    changes, the leading block up to the first weight that left is kept, and only the trailing
    block is recomputed (a triangular solve for the new rows, a Schur complement and its
    factorisation), or everything when that is not cheaper.
    """

    def __init__(self, rows: KernelRows, small: int) -> None:
        self.rows = rows
        self.small = small
        self.order: torch.Tensor | None = None
        self.L: torch.Tensor | None = None
        self.jitter = 0.0
        self.partial = 0  # updates that reused a leading block

    def _threads(self, m: int):
        return _cpu_threads(self.rows.device, 1 if m < self.small else None)

    def _full(self, free_idx: torch.Tensor, x: torch.Tensor) -> bool:
        order = free_idx[torch.argsort(x[free_idx], descending=True, stable=True)]
        A = self.rows.sub(order, order)
        diag = A.diagonal()
        jitter = 1e-13 * max(float(diag.abs().max()), 1e-300)
        diag.add_(jitter)
        with self._threads(order.numel()):
            for _ in range(6):
                L, info = torch.linalg.cholesky_ex(A)
                if int(info) == 0:
                    self.order, self.L, self.jitter = order, L, jitter
                    return True
                diag.add_(99.0 * jitter)
                jitter *= 100.0
        return False

    def update(self, free: torch.Tensor, x: torch.Tensor) -> bool:
        """Factorise ``K[F, F]`` for the free set ``free`` (mask); ``x``: the last weights.

        Returns False when no jitter lets the factorisation through.
        """
        free_idx = free.nonzero().squeeze(1)
        if self.order is None or not self.order.numel():
            return self._full(free_idx, x)
        order, L = self.order, self.L
        keep = free[order]
        gone = (~keep).nonzero()
        q = int(gone[0]) if gone.numel() else order.numel()
        known = torch.zeros_like(free)
        known[order] = True
        new = (free & ~known).nonzero().squeeze(1)
        tail = torch.cat([order[q:][keep[q:]], new])
        t = tail.numel()
        # flop counts: trailing update (new rows, Schur complement, its Cholesky) vs all
        if q == 0 or q * q * new.numel() + t * t * q + t**3 / 3 > 0.5 * (q + t) ** 3 / 3:
            return self._full(free_idx, x)
        if not t:
            self.order, self.L = order[:q], L[:q, :q]
            return True
        tail = tail[torch.argsort(x[tail], descending=True, stable=True)]
        lead = order[:q]
        position = torch.full((free.numel(),), -1, dtype=torch.long, device=free.device)
        position[order] = torch.arange(order.numel(), device=order.device)
        old = position[tail] >= 0
        with self._threads(q + t):
            L21 = L.new_empty(t, q)
            L21[old] = L[position[tail[old]], :q]
            if bool((~old).any()):
                cross = self.rows.sub(tail[~old], lead)  # K[new, lead]
                L21[~old] = torch.linalg.solve_triangular(L[:q, :q], cross.T, upper=False).T
            S = self.rows.sub(tail, tail)
            S.diagonal().add_(self.jitter)
            S.addmm_(L21, L21.T, alpha=-1.0)
            L22, info = torch.linalg.cholesky_ex(S)
        if int(info) != 0:
            return self._full(free_idx, x)
        Lnew = L.new_zeros(q + t, q + t)
        Lnew[:q, :q] = L[:q, :q]
        Lnew[q:, :q] = L21
        Lnew[q:, q:] = L22
        self.order, self.L = torch.cat([lead, tail]), Lnew
        self.partial += 1
        return True

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """``K[F, F]^-1 rhs`` (rows of ``rhs`` in the factor's order)."""
        with self._threads(rhs.shape[0]):
            return torch.cholesky_solve(rhs, self.L)


def _active_set(
    rows: KernelRows,
    kappa: torch.Tensor,
    upper: float,
    lower_sum: float,
    upper_sum: float,
    threshold: float,
    max_steps: int,
    init_size: int,
    small: int,
) -> tuple[torch.Tensor, torch.Tensor, float, int, bool]:
    """Primal-dual active-set method with a growing free set (see :func:`solve_kmm_qp`).

    Returns the weights, the gradient ``K beta - kappa``, the slab multiplier, the number of
    steps and whether it reached a point without violations.
    """
    n = kappa.numel()
    device = kappa.device
    free = torch.zeros(n, dtype=torch.bool, device=device)
    free[torch.topk(kappa, min(init_size, n)).indices] = True
    at_upper = torch.zeros_like(free)
    growth, added = 0.5, None
    seen: set[bytes] = set()
    factor = _FreeFactor(rows, small)
    x = torch.zeros_like(kappa)
    y = -kappa
    nu = 0.0
    for step in range(1, max_steps + 1):
        ui = at_upper.nonzero().squeeze(1)
        total = upper * ui.numel()
        nu, fi = 0.0, ui[:0]
        if bool(free.any()):
            if not factor.update(free, x):
                return x.clamp_(0.0, upper), y - nu, nu, step, False
            fi = factor.order
            rhs = kappa[fi]
            if ui.numel():
                rhs = rhs - upper * rows.sub(ui, fi).sum(0)
            sol = factor.solve(torch.stack([rhs, torch.ones_like(rhs)], 1))
            x0, w = sol[:, 0], sol[:, 1]
            total += float(x0.sum())
            wsum = float(w.sum())
            if not lower_sum <= total <= upper_sum and wsum > 0:
                nu = (total - (lower_sum if total < lower_sum else upper_sum)) / wsum
        m = fi.numel()
        x = torch.zeros_like(kappa)
        x[ui] = upper
        if m:
            x[fi] = x0 - nu * w
        support = torch.cat([fi, ui])
        y = rows.combine(support, x[support]) - kappa + nu
        # violations: primal (free weights outside [0, B]) and dual (bounds whose multiplier
        # has the wrong sign, beyond the threshold)
        below = free & (x < 0)
        above = free & (x > upper)
        enter = ~free & ~at_upper & (y < -threshold)
        leave = at_upper & (y > threshold)
        slab_ok = m > 0 or lower_sum <= total <= upper_sum
        if not (below.any() or above.any() or enter.any() or leave.any()) and slab_ok:
            if m and float(y[fi].abs().max()) > 0.1 * threshold:
                # one step of iterative refinement on the free weights (keeping the sum
                # when the slab is active): the jitter and round-off of the factorisation
                # leave a residual that the full gradient shows
                sol = factor.solve(-y[fi].unsqueeze(1)).squeeze(1)
                if nu != 0.0:
                    shift = float(sol.sum()) / wsum
                    sol -= shift * w
                    nu += shift
                x[fi] += sol
                y = rows.combine(support, x[support]) - kappa + nu
            return x.clamp_(0.0, upper), y - nu, nu, step, True
        if added is not None and added.numel():
            # adapt the growth to the share of the last additions that had to leave again
            waste = float(below[added].sum()) / added.numel()
            growth = min(4.0, 2 * growth) if waste < 0.1 else growth
            growth = max(0.25, growth / 2) if waste > 0.5 else growth
        free &= ~(below | above)
        at_upper = (at_upper & ~leave) | above
        free |= leave
        cand = enter.nonzero().squeeze(1)
        if not slab_ok and not cand.numel():  # nothing free and the slab is missed
            cand = (~free & ~at_upper).nonzero().squeeze(1)
        cap = max(64, int(growth * int(free.sum())))
        if cand.numel() > cap:
            cand = cand[torch.topk(-y[cand], cap).indices]
        free[cand] = True
        added = cand
        key = torch.cat([free, at_upper]).cpu().numpy().tobytes()
        if key in seen:  # a cycle: leave it to the projected-gradient fallback
            return x.clamp_(0.0, upper), y - nu, nu, step, False
        seen.add(key)
    return x.clamp_(0.0, upper), y - nu, nu, max_steps, False


def _projected_gradient(
    K: torch.Tensor,
    kappa: torch.Tensor,
    x: torch.Tensor,
    upper: float,
    lower_sum: float,
    upper_sum: float,
    tol: float,
    max_iter: int,
    kkt_step: float,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, float, int]:
    """Accelerated projected gradient (FISTA with adaptive restart) until the KKT residual is met.

    The fallback of :func:`solve_kmm_qp`: slow on ill-conditioned kernels but convergent from
    any start. Returns the weights, the gradient, the KKT residual and the iterations.
    """
    x = project_box_slab(x, upper, lower_sum, upper_sum)
    Kx = K @ x
    # Step size 1/L: start from a Rayleigh-quotient estimate of the largest eigenvalue; the
    # exact curvature test in the loop raises L whenever a step shows it was too small.
    u = Kx / Kx.norm().clamp_min(1e-300)
    L = max(float(u @ (K @ u)), float(K.diagonal().max()), 1e-300) * 1.01
    y, Ky, t = x, Kx, 1.0
    f = 0.5 * float(x @ Kx) - float(kappa @ x)
    residual = kkt_residual(x, Kx - kappa, upper, lower_sum, upper_sum, kkt_step, scale)
    iterations = 0
    while residual > tol and iterations < max_iter:
        iterations += 1
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
        fn = 0.5 * float(xn @ Kxn) - float(kappa @ xn)
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        if float(grad_y @ (xn - x)) > 0 or fn > f:  # adaptive restart of the momentum
            y, Ky, t_next = xn, Kxn, 1.0
        else:
            mom = (t - 1.0) / t_next
            y, Ky = xn + mom * (xn - x), Kxn + mom * (Kxn - Kx)
        x, Kx, t, f = xn, Kxn, t_next, fn
        residual = kkt_residual(x, Kx - kappa, upper, lower_sum, upper_sum, kkt_step, scale)
    return x, Kx - kappa, residual, iterations


def solve_kmm_qp(
    K: torch.Tensor | KernelRows,
    kappa: torch.Tensor,
    *,
    upper: float,
    lower_sum: float,
    upper_sum: float,
    tol: float = 1e-6,
    max_iter: int = 10000,
    max_steps: int = 200,
    init_size: int | None = None,
    small: int = 1024,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Solve the KMM QP ``min 1/2 b^T K b - kappa^T b`` over the box-and-slab feasible set.

    The set is ``{0 <= b <= upper, lower_sum <= sum(b) <= upper_sum}``.

    Primal-dual active-set method (Hintermüller, Ito, Kunisch 2003) whose free set grows from
    the ``init_size`` largest ``kappa_i``: each step solves the Newton system of the free
    weights exactly (Cholesky of ``K[F, F]``; the other weights sit at 0 or ``B``; the slab
    enters as one multiplier when the free solution leaves it), computes the full gradient,
    moves free weights that left ``[0, B]`` to their bound and bound weights whose multiplier
    has the wrong sign (beyond ``0.1 * tol``) to the free set. The additions per step are
    capped at a fraction of the free set (the most violated first), which keeps every
    factorisation near the size of the final free set; the fraction adapts to how many of the
    last additions had to leave again. The method stops at a point with no violation, i.e.
    the exact optimum up to round-off and the threshold; its KKT residual (see
    :func:`kkt_residual`) is measured with the full gradient. Should it cycle or fail (never
    seen), accelerated projected gradient takes over from its last point and runs until the
    residual is below ``tol``.

    Parameters
    ----------
    K : Tensor of shape (n, n) or KernelRows
        Symmetric positive semi-definite matrix (the source kernel matrix), dense or as rows
        computed on demand (:class:`KernelRows`).
    kappa : Tensor of shape (n,)
        Linear term.
    upper : float
        Box bound ``B`` (> 0).
    lower_sum, upper_sum : float
        Bounds on the sum of the weights.
    tol : float, default=1e-6
        Stop when :func:`kkt_residual` is below ``tol``.
    max_iter : int, default=10000
        Cap on the projected-gradient iterations of the fallback (one product with ``K``
        each); reaching it is reported in ``converged``, not hidden.
    max_steps : int, default=200
        Cap on the active-set steps.
    init_size : int, optional
        Initial free set size (default ``max(64, n // 10)``).
    small : int, default=1024
        Free sets below this size are factorised on one CPU thread (a small factorisation
        gains nothing from a second thread and pays for its synchronisation).

    Returns
    -------
    beta : Tensor of shape (n,)
        The weights.
    info : dict
        ``objective``, ``kkt_residual``, ``newton_steps`` (active-set steps),
        ``iterations`` (fallback projected-gradient iterations, normally 0), ``converged``,
        ``free`` (weights strictly inside ``(0, B)``), ``kernel_rows`` (rows of ``K`` the
        solver computed or copied), ``lipschitz`` (``trace(K)``, the constant of the KKT
        measure), ``n``.
    """
    rows = K if isinstance(K, KernelRows) else KernelRows.from_matrix(K)
    n = kappa.numel()
    scale = max(float(kappa.abs().max()), float(rows.diag.abs().max()), 1e-300)
    lipschitz = max(float(rows.diag.sum()), 1e-300)  # trace(K) >= lambda_max(K)
    x, grad, _, steps, ok = _active_set(
        rows,
        kappa,
        upper,
        lower_sum,
        upper_sum,
        threshold=0.1 * tol * scale,
        max_steps=max_steps,
        init_size=init_size or max(64, n // 10),
        small=small,
    )
    residual = kkt_residual(x, grad, upper, lower_sum, upper_sum, 1.0 / lipschitz, scale)
    iterations = 0
    if not ok or residual > tol:
        x, grad, residual, iterations = _projected_gradient(
            rows.matrix(),
            kappa,
            x,
            upper,
            lower_sum,
            upper_sum,
            tol,
            max_iter,
            1.0 / lipschitz,
            scale,
        )
    if not bool(torch.isfinite(x).all()):  # pragma: no cover - defensive, never seen
        raise FloatingPointError("KMM solver produced non-finite weights")
    info = {
        "objective": 0.5 * float(x @ (grad + kappa)) - float(kappa @ x),
        "kkt_residual": residual,
        "newton_steps": steps,
        "iterations": iterations,
        "converged": residual <= tol,
        "free": int(((x > 0) & (x < upper)).sum()),
        "kernel_rows": rows.computed,
        "lipschitz": lipschitz,
        "n": n,
    }
    return x, info


def kmm_inputs(
    Xs: torch.Tensor,
    Xt: torch.Tensor,
    *,
    kernel: str = "rbf",
    gamma: float | None = None,
    degree: int = 3,
    coef0: float = 1.0,
    block_size: int | None = None,
) -> tuple[KernelRows, torch.Tensor]:
    """The data of the KMM QP: the source kernel matrix (rows on demand) and ``kappa``.

    ``kappa_i = (n_s / n_t) sum_j k(x_i, x'_j)`` is summed block by block (``block_size``
    source rows at a time, default about a million kernel entries per block), so no
    ``n_s x n_t`` matrix is ever held; ``K`` is returned as :class:`KernelRows`, whose rows are
    evaluated only when the solver needs them.

    Parameters
    ----------
    Xs, Xt : Tensor of shape (n_s, d), (n_t, d)
        Source and target samples (same dtype and device; float64 for the exact solver).
    kernel, gamma, degree, coef0
        The kernel (see :func:`~tlbench.kernels.pairwise_kernel`); ``gamma`` must be given
        for ``rbf`` (the median heuristic is the caller's choice of seed).
    block_size : int, optional
        Rows per kernel block.

    Returns
    -------
    K : KernelRows
    kappa : Tensor of shape (n_s,)
    """
    kw = {"kernel": kernel, "gamma": gamma, "degree": degree, "coef0": coef0}
    ns, nt = len(Xs), len(Xt)
    block = block_size or _default_block(nt)
    kappa = torch.empty(ns, dtype=Xs.dtype, device=Xs.device)
    for i in range(0, ns, block):
        kappa[i : i + block] = pairwise_kernel(Xs[i : i + block], Xt, **kw).sum(1)
    kappa *= ns / nt
    return KernelRows.from_data(Xs, block_size=block_size, **kw), kappa


# --------------------------------------------------------------------------- the method


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
        Rows of the kernel matrices computed at a time (default: about 2^20 kernel entries
        per block).
    device : str, optional
        Torch device of the kernel and the solver; ``None``: the trainer's (``hardware=``),
        else the CPU (:func:`tlbench.trainer.method_device`); ``auto``: CUDA when available.
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
        ``zero_weights``, ``objective``, ``kkt_residual``, ``newton_steps`` (active-set
        steps), ``iterations`` (fallback projected-gradient iterations, normally 0),
        ``converged``, ``kernel_rows`` (rows of ``K`` evaluated), ``kernel_seconds``
        (``kappa`` and the diagonal), ``solver_seconds`` (including the rows of ``K``).
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
        device: str | None = None,
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
        self.check_weighted_estimator()

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Check the configuration, compute the weights, fit the weighted classifier."""
        self._validate()
        self.device_ = str(method_device(self.device, trainer))
        return super().fit(task, trainer)

    def compute_weights(self, task: TransferTask) -> np.ndarray:
        """Solve the KMM quadratic program; return one weight per source sample."""
        device = torch.device(getattr(self, "device_", None) or method_device(self.device))
        Xs = as_tensor(task.source.X, dtype=torch.float64, device=device)
        Xt = as_tensor(task.target.X, dtype=torch.float64, device=device)
        ns = len(Xs)
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
        K, kappa = kmm_inputs(
            Xs,
            Xt,
            kernel=self.kernel,
            gamma=gamma,
            degree=self.degree,
            coef0=self.coef0,
            block_size=self.block_size,
        )
        kernel_seconds = time.perf_counter() - start

        start = time.perf_counter()
        kscale = float(K.diag.abs().max())
        if not bool(torch.isfinite(K.diag).all() and torch.isfinite(kappa).all()):
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
            "kernel_rows": int(info.get("kernel_rows", 0)),
            "kappa_underflow": bool(info["underflow"]),
            "gamma": self.gamma_,
            "eps": eps,
            "kernel_seconds": kernel_seconds,
            "solver_seconds": solver_seconds,
        }
        return weights
