"""A-SVM: adapt a source SVM to the target with a few labeled target samples.

Yang, Yan, Hauptmann, "Cross-domain video concept detection using adaptive SVMs", ACM
Multimedia 2007 (https://doi.org/10.1145/1291233.1291276). An auxiliary classifier ``f^s``,
here a linear SVM trained on the labeled source, is kept fixed and a "delta function" is
learned on the ``m`` labeled target samples ``(x_i, y_i)``, ``y_i`` in {-1, +1}:

    f(x) = f^s(x) + dw . phi(x)                                  (the paper's eq. 2, no bias)
    min_dw  1/2 ||dw||^2 + C sum_i xi_i
    s.t.    y_i f^s(x_i) + y_i dw . phi(x_i) >= 1 - xi_i,  xi_i >= 0        (eq. 3)

The delta function has no bias term (the paper's ``Delta f(x) = w^T phi(x)``; the source
classifier carries one), so the dual has no equality constraint, only a box (eq. 5):

    max_alpha  sum_i alpha_i (1 - y_i f^s(x_i)) - 1/2 sum_ij alpha_i alpha_j y_i y_j K(x_i, x_j)
    s.t.       0 <= alpha_i <= C,

and ``f(x) = f^s(x) + sum_i alpha_i y_i K(x, x_i)`` (eq. 6). A target sample that the source
classifier already gets right with margin (``y_i f^s(x_i) > 1``) has a negative linear term and
is pushed out of the support; a misclassified one gets a large one. The QP is small (k labeled
target samples per class) and is solved to a certified tolerance by dual coordinate descent
(:func:`solve_box_qp`: exact one-variable maximisation, cyclic, with Newton steps on the free
variables to finish, stopped when the largest violation of the KKT conditions is below
``tol``). Without an equality constraint one variable
can move at a time, as in the paper's SMO-style solver.

Deviations from the paper
-------------------------
- One auxiliary classifier (the source SVM), with weight 1: the paper's general form
  ``sum_k t_k f^a_k(x)`` over several auxiliary classifiers and its choice of the ``t_k`` do not
  arise with one source domain.
- The source classifier is a linear SVM (``SVC(kernel="linear", C=source_C)``) whatever
  ``kernel`` is; ``kernel`` is the kernel of the delta function. (The paper's auxiliary
  classifiers are SVMs trained on the auxiliary data, kernel unspecified per experiment.)
- Multi-class (the paper's concepts are binary detectors): one-vs-rest. Class ``c`` gets a
  binary source SVM (``c`` against the rest of the source) and one binary A-SVM adapting it on
  the labeled target (``y_i = +1`` iff the label is ``c``); the prediction is
  ``argmax_c f_c(x)``. Two classes: one A-SVM, ``sign f(x)``.
- ``gamma="scale"`` (rbf delta kernel) is scikit-learn's ``1 / (n_features * X.var())`` over the
  labeled target samples; the paper does not give its kernel widths.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.metrics.pairwise import linear_kernel, rbf_kernel
from sklearn.svm import SVC

from ...errors import ConfigError, IncompatibleTaskError
from ...registry import register_method
from ...task import TransferTask
from ..base import TransferMethod, check_fitted

__all__ = ["ASVM", "base_kernel", "resolve_gamma", "solve_box_qp"]

log = logging.getLogger(__name__)

KERNELS: tuple[str, ...] = ("linear", "rbf")

#: Rows of the test-vs-training kernel computed at a time in ``predict``.
PREDICT_BLOCK = 4096


def resolve_gamma(gamma: float | str, X: Any) -> float:
    """The rbf width: ``gamma`` itself, or ``1 / (n_features * X.var())`` for ``"scale"``."""
    if gamma != "scale":
        return float(gamma)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        var = float(X.multiply(X).mean() - X.mean() ** 2)
    else:
        var = float(np.var(np.asarray(X, dtype=np.float64)))
    return 1.0 / (X.shape[1] * var) if var > 0 else 1.0


def base_kernel(A: Any, B: Any, kernel: str, gamma: float) -> np.ndarray:
    """``k(A, B)`` as a dense float64 array (linear or rbf; dense or sparse inputs)."""
    out = linear_kernel(A, B) if kernel == "linear" else rbf_kernel(A, B, gamma=gamma)
    return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float64)


def solve_box_qp(
    K: np.ndarray,
    Y: np.ndarray,
    P: np.ndarray,
    C: float,
    *,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, int, float]:
    """Solve A-SVM duals, one per row of ``Y``, by dual coordinate descent.

    Row ``c`` maximises ``P[c] . a - 1/2 a^T (y y^T * K) a`` over ``0 <= a <= C``, with
    ``y = Y[c]``. All rows share the kernel and are updated together, one coordinate at a time.

    Parameters
    ----------
    K : ndarray of shape (m, m)
        Kernel of the training samples (positive semi-definite).
    Y : ndarray of shape (r, m)
        Labels in {-1, +1}, one row per binary problem.
    P : ndarray of shape (r, m)
        Linear terms, ``1 - y_i f^s(x_i)`` for A-SVM.
    C : float
        Upper bound of every ``alpha_i``.
    tol : float, default=1e-8
        Stop when no KKT condition is violated by more than ``tol * max(1, max|P|)``: the
        gradient ``g_i = P_i - (Q a)_i`` is ``<= tol`` where ``a_i = 0``, ``>= -tol`` where
        ``a_i = C`` and ``|g_i| <= tol`` in between.
    max_iter : int, default=10000
        Cap on the passes over the coordinates.

    Returns
    -------
    alpha : ndarray of shape (r, m)
        The dual solutions.
    n_iter : int
        Passes made.
    violation : float
        Largest KKT violation at the end (absolute).
    """
    K = np.asarray(K, dtype=np.float64)
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    P = np.atleast_2d(np.asarray(P, dtype=np.float64))
    r, m = Y.shape
    alpha = np.zeros((r, m))
    grad = P.copy()  # g = P - Q alpha, with alpha = 0
    diag = np.diag(K).copy()
    stop = tol * max(1.0, float(np.abs(P).max(initial=0.0)))
    violation = _kkt_violation(alpha, grad, C)
    n_iter = 0
    while violation > stop and n_iter < max_iter:
        n_iter += 1
        for i in range(m):
            if diag[i] > 0:
                new = np.clip(alpha[:, i] + grad[:, i] / diag[i], 0.0, C)
            else:  # a zero feature vector: the objective is linear in alpha_i
                new = np.where(grad[:, i] > 0, C, 0.0)
            delta = new - alpha[:, i]
            if not np.any(delta):
                continue
            alpha[:, i] = new
            # (Q_c)_{:, i} = y_c * y_c[i] * K[:, i]
            grad -= (delta * Y[:, i])[:, None] * Y * K[i][None, :]
        if n_iter & (n_iter - 1) == 0 or n_iter % 8 == 0:  # passes 1, 2, 4, 8, 16, 24, ...
            _polish(alpha, grad, K, Y, P, C, stop)
        violation = _kkt_violation(alpha, grad, C)
    if violation > stop:
        log.warning(
            "asvm: the dual solver stopped after %d passes with KKT violation %.2e (> %.2e)",
            n_iter,
            violation,
            stop,
        )
    return alpha, n_iter, violation


def _polish(
    alpha: np.ndarray,
    grad: np.ndarray,
    K: np.ndarray,
    Y: np.ndarray,
    P: np.ndarray,
    C: float,
    stop: float,
) -> None:
    """Newton steps on the free set of each unconverged row, in place (an active-set finish).

    Coordinate descent converges slowly when ``Q`` is singular (a linear kernel on more samples
    than dimensions). With ``F`` the ``alpha_i`` strictly inside the box, the step
    ``Q_FF d = g_F`` (least squares, for a singular ``Q_FF``) maximises the dual on that face;
    if ``g_F`` has a part ``r`` in the null space of ``Q_FF``, the dual rises linearly along
    ``r`` and the step follows ``r`` instead. A step is cut where a variable reaches 0 or ``C``,
    that variable leaves ``F``, and the step is repeated. The dual never decreases; coordinate
    descent then frees any bound variable whose gradient points inside.
    """
    for c in range(alpha.shape[0]):
        y = Y[c]
        for _ in range(alpha.shape[1]):
            if _kkt_violation(alpha[c : c + 1], grad[c : c + 1], C) <= stop:
                break
            free = np.flatnonzero((alpha[c] > 0) & (alpha[c] < C))
            if len(free) == 0:
                break
            Q_ff = y[free, None] * K[np.ix_(free, free)] * y[None, free]
            g_f = grad[c, free]
            step = np.linalg.lstsq(Q_ff, g_f, rcond=1e-10)[0]
            residual = g_f - Q_ff @ step  # in the null space of Q_FF: the dual rises linearly
            newton = np.abs(residual).max() <= stop
            if not newton:  # along it, to the first bound
                step = residual
            a = alpha[c, free]
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(step > 0, (C - a) / step, np.where(step < 0, -a / step, np.inf))
            t = min(1.0, float(room.min())) if newton else float(room.min())
            new = np.clip(a + t * step, 0.0, C)
            if not newton or t < 1.0:  # the variable(s) that limited the step land on a bound
                hit = room <= t
                new[hit] = np.where(step[hit] > 0, C, 0.0)
            alpha[c, free] = new
            grad[c] = P[c] - y * (K @ (y * alpha[c]))
            if newton and t >= 1.0:
                break


def _kkt_violation(alpha: np.ndarray, grad: np.ndarray, C: float) -> float:
    """Largest violation of the box-QP optimality conditions (projected gradient norm)."""
    up = np.where(alpha < C, np.maximum(grad, 0.0), 0.0)  # could still increase
    down = np.where(alpha > 0, np.maximum(-grad, 0.0), 0.0)  # could still decrease
    return float(max(up.max(initial=0.0), down.max(initial=0.0)))


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"asvm: {name} must be > 0, got {value!r}")
    if not np.isfinite(value):
        raise ConfigError(f"asvm: {name} must be finite, got {value!r}")
    return float(value)


@register_method("asvm")
class ASVM(TransferMethod):
    """Adaptive SVM (Yang, Yan, Hauptmann, ACM MM 2007): a source SVM plus a target delta.

    Parameters
    ----------
    C : float, default=1.0
        Penalty of the target slacks (``C`` of the paper's eq. 3): small keeps the source
        classifier (``C -> 0``: exactly ``f^s``), large fits the labeled target.
    source_C : float, default=1.0
        ``C`` of the linear source SVM(s) ``f^s``.
    kernel : {"linear", "rbf"}, default="linear"
        Kernel ``K`` of the delta function.
    gamma : float or "scale", default="scale"
        Width of the rbf kernel ``exp(-gamma ||x - z||^2)``; ``scale``: see the module docstring.
    tol : float, default=1e-8
        KKT tolerance of the dual solver (relative to ``max(1, max_i |1 - y_i f^s(x_i)|)``).
    max_iter : int, default=10000
        Cap on the solver's passes (a warning says when it is hit).

    Attributes
    ----------
    classes_ : ndarray
        The class labels (those of the source).
    source_coef_ : ndarray of shape (r, n_features)
        Weights of the linear source SVMs (``r = 1`` for two classes, else one per class).
    source_intercept_ : ndarray of shape (r,)
        Their biases.
    alpha_ : ndarray of shape (r, m)
        The dual solutions on the ``m`` labeled target samples.
    dual_coef_ : ndarray of shape (r, m)
        ``alpha_i y_i``, the coefficients of the delta function.
    X_fit_ : array or sparse matrix
        The labeled target samples (the delta function's expansion points).
    gamma_ : float or None
        The rbf width used (``None`` for the linear kernel).
    classifier_ : str
        ``"asvm(linear_svm source)"``, for the record.
    diagnostics_ : dict
        Support vectors, the dual objective, the accuracies of the source classifier and of
        the adapted one on the labeled target samples, solver passes and KKT violation.
    """

    family: ClassVar[str] = "parameter"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = (
        "Yang, Yan, Hauptmann. Cross-domain video concept detection using adaptive SVMs. "
        "ACM MM 2007"
    )

    def __init__(
        self,
        *,
        C: float = 1.0,
        source_C: float = 1.0,
        kernel: str = "linear",
        gamma: float | str = "scale",
        tol: float = 1e-8,
        max_iter: int = 10_000,
    ) -> None:
        self.C = C
        self.source_C = source_C
        self.kernel = kernel
        self.gamma = gamma
        self.tol = tol
        self.max_iter = max_iter

    def _validate(self) -> None:
        _check_positive("C", self.C)
        _check_positive("source_C", self.source_C)
        _check_positive("tol", self.tol)
        if self.kernel not in KERNELS:
            choices = ", ".join(KERNELS)
            raise ConfigError(f"asvm: kernel must be one of {choices}, got {self.kernel!r}")
        if self.gamma != "scale":
            _check_positive("gamma", self.gamma)
        it = self.max_iter
        if isinstance(it, bool) or not isinstance(it, int) or it < 1:
            raise ConfigError(f"asvm: max_iter must be an integer >= 1, got {it!r}")

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Train the source SVM(s), then solve one A-SVM dual per class on the labeled target."""
        self._validate()
        self.check_task(task)
        Xs, ys = task.source.X, np.asarray(task.source.y)
        classes = np.unique(ys)
        if len(classes) < 2:
            raise IncompatibleTaskError("asvm: the source holds a single class")
        labeled = task.target.labeled()
        Xt, yt = labeled.X, np.asarray(labeled.y)
        unknown = np.setdiff1d(yt, classes)
        if len(unknown):
            raise IncompatibleTaskError(
                f"asvm: labeled target classes {unknown.tolist()} are not in the source, so no "
                "source classifier exists to adapt"
            )
        # one binary problem per class (one-vs-rest), or one for two classes (+1 = classes[1])
        rows = classes[1:] if len(classes) == 2 else classes
        coef, intercept = self._fit_source(Xs, ys, rows)
        self.classes_ = classes
        self.source_coef_, self.source_intercept_ = coef, intercept
        Y = np.where(yt[None, :] == rows[:, None], 1.0, -1.0)
        f_source = self._source_scores(Xt)
        P = 1.0 - Y * f_source.T
        self.gamma_ = resolve_gamma(self.gamma, Xt) if self.kernel == "rbf" else None
        K = base_kernel(Xt, Xt, self.kernel, self.gamma_)
        alpha, n_iter, violation = solve_box_qp(
            K, Y, P, float(self.C), tol=float(self.tol), max_iter=int(self.max_iter)
        )
        self.alpha_ = alpha
        self.dual_coef_ = alpha * Y
        self.X_fit_ = Xt
        self.classifier_ = "asvm(linear_svm source)"
        quad = np.einsum("ri,ij,rj->r", self.dual_coef_, K, self.dual_coef_)
        dual = np.sum(P * alpha, axis=1) - 0.5 * quad
        adapted = f_source + K @ self.dual_coef_.T
        self.diagnostics_ = {
            "n_support": int(np.sum(alpha > 0)),
            "n_support_per_class": np.sum(alpha > 0, axis=1).tolist(),
            "dual_objective": float(dual.sum()),
            "source_accuracy_labeled_target": float(np.mean(self._decide(f_source) == yt)),
            "accuracy_labeled_target": float(np.mean(self._decide(adapted) == yt)),
            "solver_passes": int(n_iter),
            "kkt_violation": float(violation),
            "n_target_labeled": int(len(yt)),
            "gamma": self.gamma_,
        }
        return self

    def _fit_source(
        self, Xs: Any, ys: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Linear source SVMs, one per row (class ``c`` against the rest), as ``(W, b)``."""
        gram = base_kernel(Xs, Xs, "linear", 0.0)  # one Gram matrix for every binary SVM
        coef = np.zeros((len(rows), Xs.shape[1]))
        intercept = np.zeros(len(rows))
        X_csr = sp.csr_matrix(Xs, dtype=np.float64) if sp.issparse(Xs) else None
        for r, c in enumerate(rows):
            svc = SVC(kernel="precomputed", C=float(self.source_C))
            svc.fit(gram, np.where(ys == c, 1, -1))
            # dual_coef_ = y_i alpha_i (classes_ = [-1, 1]): w = sum_i y_i alpha_i x_i
            sv, dual = svc.support_, svc.dual_coef_.ravel()
            if X_csr is not None:
                coef[r] = np.asarray(X_csr[sv].T @ dual).ravel()
            else:
                coef[r] = dual @ np.asarray(Xs, dtype=np.float64)[sv]
            intercept[r] = svc.intercept_[0]
        return coef, intercept

    def _source_scores(self, X: Any) -> np.ndarray:
        """``f^s(X)`` of shape (n, r)."""
        return np.asarray(X @ self.source_coef_.T, dtype=np.float64) + self.source_intercept_

    def _decide(self, scores: np.ndarray) -> np.ndarray:
        if len(self.classes_) == 2:
            return self.classes_[(scores[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def source_decision_function(self, X: Any) -> np.ndarray:
        """The source classifier's decision values ``f^s(X)`` (shape (n,) for two classes)."""
        check_fitted(self, "source_coef_")
        scores = self._source_scores(X)
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_source_only(self, X: Any) -> np.ndarray:
        """Labels of the unadapted source classifier (``argmax_c f^s_c`` or ``sign f^s``)."""
        check_fitted(self, "source_coef_")
        return self._decide(self._source_scores(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """The adapted ``f(X) = f^s(X) + sum_i alpha_i y_i K(X, x_i)`` ((n,) for two classes)."""
        check_fitted(self, "dual_coef_")
        n = X.shape[0]
        scores = np.empty((n, len(self.source_intercept_)))
        for start in range(0, n, PREDICT_BLOCK):
            rows = slice(start, min(start + PREDICT_BLOCK, n))
            Kb = base_kernel(X[rows], self.X_fit_, self.kernel, self.gamma_)
            scores[rows] = self._source_scores(X[rows]) + Kb @ self.dual_coef_.T
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X: Any) -> np.ndarray:
        """``argmax_c f_c(x)`` (two classes: ``sign f(x)``)."""
        scores = self.decision_function(X)
        return self._decide(scores[:, None] if scores.ndim == 1 else scores)
