"""RMTL: regularized multi-task learning of the source and the target as two related SVM tasks.

Evgeniou & Pontil, "Regularized multi-task learning", KDD 2004
(https://doi.org/10.1145/1014052.1014067). The source (task ``s``) and the labeled target
(task ``t``), ``T = 2`` tasks, get the linear models ``w_t = w_0 + v_t``: ``w_0`` is shared and
``v_t`` is task-specific. The paper's problem (its eq. 2) is

    min  sum_t sum_i xi_it + lambda1 / T sum_t ||v_t||^2 + lambda2 ||w_0||^2
    s.t. y_it (w_0 + v_t) . x_it >= 1 - xi_it,  xi_it >= 0.

With the feature map ``Phi(x, t) = (x / sqrt(mu), 0, .., x, .., 0)`` (``x`` in the block of
task ``t``) and ``mu = T lambda2 / lambda1`` it is one SVM with the weight vector
``(sqrt(mu) w_0, v_1, .., v_T)``, the penalty ``C = T / (2 lambda1)`` and the multi-task kernel
(the paper's section 2.2, its kernel ``K_st``)

    K((x, s), (z, t)) = (1/mu + delta_st) k(x, z),

where ``k`` is the linear kernel (the paper also uses it with any kernel ``k``). ``mu -> 0``
lets the shared ``w_0`` dominate: one model for both tasks; ``mu -> inf`` makes the kernel
block-diagonal: independent tasks.

tlbench trains that SVM with scikit-learn's ``SVC(kernel="precomputed")`` on the source plus the
labeled target samples, and predicts target samples as task ``t`` (:meth:`RMTL.predict`;
:meth:`RMTL.predict_source` predicts as task ``s``). The kernel is normalised to

    K_mu((x, s), (z, t)) = (1/(1 + mu) + mu/(1 + mu) delta_st) (k(x, z) + B),

i.e. ``mu / (1 + mu)`` times the paper's kernel (``B``: see below). An SVM with penalty ``C`` on
``K_mu`` is the paper's SVM with penalty ``C_paper = C mu / (1 + mu)`` on its kernel, so

    lambda1 = T / (2 C_paper) = (1 + mu) / (mu C),    lambda2 = mu lambda1 / T = (1 + mu) / (2 C).

The normalisation keeps the limits at the same ``C``: ``mu -> 0`` is the SVM with penalty ``C``
on ``k`` over source + labeled target (``source_and_target`` with ``linear_svm``), ``mu -> inf``
is two independent SVMs with penalty ``C`` (on the target: ``target_only`` with
``linear_svm``; but see "Intercepts" below). With the paper's un-normalised kernel,
``mu -> 0`` would instead be the SVM with penalty ``C / mu`` (a hard margin). For the linear
kernel the same SVM is an ``SVC(kernel="linear")`` on :func:`augment_features` (the feature
map above, normalised).

Deviations from the paper
-------------------------
- Intercepts. The paper's models have no bias; libsvm's SVC adds one unregularised intercept
  ``b``, shared by both tasks. So ``mu -> 0`` is exactly one SVM (``source_and_target``), but
  ``mu -> inf`` is two SVMs that still share ``b``: the target task is then the bias-free
  target SVM offset by ``b``, not ``target_only`` with its own intercept (it differed from it
  by 3-48 % of the decision scale on the toy tasks). ``intercept_scaling = s > 0`` adds the
  constant ``B = s^2 * mean_i k(x_i, x_i)`` to ``k``: a constant feature appended to ``x``,
  whose weight is shared and task-specific like ``w``. Its shared part is redundant with ``b``
  (the SVC's equality constraint cancels it); its task-specific part gives each task its own
  intercept, penalised ``B`` times more weakly than ``v_t``, so at ``mu -> inf`` the tasks are
  independent up to ``O(1/s^2)``. It is off by default because libsvm caches kernel values in
  single precision: a large ``B`` costs accuracy (``s = 10``: the ``mu -> inf`` and
  ``mu -> 0`` limits hold to about 1e-3 of the decision scale instead of 1e-7 / 1e-8;
  ``s = 30``: 1e-2 on the source side).
- The kernel normalisation above (a reparametrisation of ``(C, mu)``, the same family of
  solutions as the paper's ``(lambda1, lambda2)``).
- Multi-class (the paper's tasks are binary or regression): libsvm's one-vs-one on the
  multi-task kernel; each pair of classes is one two-task RMTL.
- ``mu`` and ``C`` are fixed hyperparameters; the paper chooses them by cross-validation.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.svm import SVC

from ...errors import ConfigError, IncompatibleTaskError
from ...registry import register_method
from ...task import TransferTask
from ..base import TransferMethod, check_fitted
from .asvm import KERNELS, PREDICT_BLOCK, base_kernel, resolve_gamma

__all__ = ["RMTL", "augment_features", "task_weights"]

#: Number of tasks ``T`` (source and target).
N_TASKS = 2


def task_weights(mu: float) -> tuple[float, float]:
    """``(1/(1+mu), mu/(1+mu))``: the shared and the same-task weights of the kernel."""
    if np.isinf(mu):
        return 0.0, 1.0
    return 1.0 / (1.0 + mu), mu / (1.0 + mu)


def augment_features(X: Any, is_target: bool, mu: float, intercept: float = 0.0) -> Any:
    """The normalised feature map of the linear multi-task kernel (see the module docstring).

    ``Phi(x, t) = [sqrt(a) x, sqrt(a) c, sqrt(b) x [t=s], sqrt(b) c [t=s], sqrt(b) x [t=t],
    sqrt(b) c [t=t]]`` with ``(a, b) = task_weights(mu)`` and ``c = sqrt(intercept)``, so that
    ``Phi(x, s) . Phi(z, t) = K_mu((x, s), (z, t))`` for the linear ``k`` and ``B = intercept``.

    Parameters
    ----------
    X : array or sparse matrix of shape (n, d)
        Samples of one task.
    is_target : bool
        Whether they belong to the target task (else the source).
    mu : float
        The sharing parameter.
    intercept : float, default=0.0
        ``B``, the constant added to the linear kernel.

    Returns
    -------
    Z : array or sparse matrix of shape (n, 3 (d + 1))
    """
    a, b = task_weights(mu)
    n = X.shape[0]
    ones = np.full((n, 1), np.sqrt(intercept))
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        zero = sp.csr_matrix((n, X.shape[1] + 1))
        own = sp.hstack([X, ones]) * np.sqrt(b)
        blocks = [sp.hstack([X, ones]) * np.sqrt(a), *((zero, own) if is_target else (own, zero))]
        return sp.hstack(blocks).tocsr()
    X = np.asarray(X, dtype=np.float64)
    full = np.hstack([X, ones])
    zero = np.zeros_like(full)
    own = np.sqrt(b) * full
    return np.hstack([np.sqrt(a) * full, *((zero, own) if is_target else (own, zero))])


@register_method("rmtl")
class RMTL(TransferMethod):
    """Regularized multi-task learning (Evgeniou & Pontil, KDD 2004) of source and target.

    Parameters
    ----------
    C : float, default=1.0
        Penalty of the SVM on the normalised multi-task kernel (the paper's
        ``C = T / (2 lambda1)`` is ``C mu / (1 + mu)``; see the module docstring).
    mu : float, default=1.0
        The sharing parameter ``mu = T lambda2 / lambda1`` (> 0): ``mu -> 0`` one shared
        model (``source_and_target``), ``mu -> inf`` independent tasks (``target_only``).
        ``1``: the shared and the task-specific parts weigh the same.
    kernel : {"linear", "rbf"}, default="linear"
        The base kernel ``k``.
    gamma : float or "scale", default="scale"
        Width of the rbf kernel; ``scale``: ``1 / (n_features * X.var())`` over the training
        samples (scikit-learn's rule).
    intercept_scaling : float, default=0.0
        Value of a constant feature that gives each task its own intercept, in units of the
        root-mean-square norm of the samples under ``k``: ``B = intercept_scaling^2 *
        mean k(x, x)`` (>= 0). ``0``: only libsvm's intercept, shared by both tasks (see the
        module docstring).
    tol : float, default=1e-3
        libsvm's stopping tolerance (scikit-learn's default, as in ``linear_svm``).

    Attributes
    ----------
    svc_ : sklearn.svm.SVC
        The fitted SVM on the precomputed multi-task kernel.
    classes_ : ndarray
        The class labels.
    X_fit_ : array or sparse matrix
        Source samples followed by the labeled target samples.
    is_target_fit_ : ndarray of bool
        Which of them are target samples.
    gamma_ : float or None
        The rbf width used.
    intercept_ : float
        ``B``.
    classifier_ : str
        ``"svc(multi-task <kernel> kernel)"``, for the record.
    diagnostics_ : dict
        Support vectors (from each task), ``mu``, the paper's ``lambda1``, ``lambda2`` and ``C``.
    """

    family: ClassVar[str] = "parameter"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = "Evgeniou, Pontil. Regularized multi-task learning. KDD 2004"

    def __init__(
        self,
        *,
        C: float = 1.0,
        mu: float = 1.0,
        kernel: str = "linear",
        gamma: float | str = "scale",
        intercept_scaling: float = 0.0,
        tol: float = 1e-3,
    ) -> None:
        self.C = C
        self.mu = mu
        self.kernel = kernel
        self.gamma = gamma
        self.intercept_scaling = intercept_scaling
        self.tol = tol

    def _validate(self) -> None:
        for name in ("C", "mu", "tol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"rmtl: {name} must be > 0, got {value!r}")
        if not np.isfinite(self.C):
            raise ConfigError(f"rmtl: C must be finite, got {self.C!r}")
        if self.kernel not in KERNELS:
            choices = ", ".join(KERNELS)
            raise ConfigError(f"rmtl: kernel must be one of {choices}, got {self.kernel!r}")
        if self.gamma != "scale" and (
            isinstance(self.gamma, bool)
            or not isinstance(self.gamma, int | float)
            or not 0 < self.gamma < np.inf
        ):
            raise ConfigError(f"rmtl: gamma must be > 0 or 'scale', got {self.gamma!r}")
        s = self.intercept_scaling
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0 <= s < np.inf:
            raise ConfigError(f"rmtl: intercept_scaling must be >= 0, got {s!r}")

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Train one SVM on source + labeled target with the multi-task kernel."""
        self._validate()
        self.check_task(task)
        Xs, ys = task.source.X, np.asarray(task.source.y)
        labeled = task.target.labeled()
        stack = sp.vstack if sp.issparse(Xs) or sp.issparse(labeled.X) else np.vstack
        X = stack([Xs, labeled.X])
        y = np.concatenate([ys, np.asarray(labeled.y)])
        if len(np.unique(y)) < 2:
            raise IncompatibleTaskError("rmtl needs training labels of two classes")
        is_target = np.arange(len(y)) >= len(ys)
        self.gamma_ = resolve_gamma(self.gamma, X) if self.kernel == "rbf" else None
        k = base_kernel(X, X, self.kernel, self.gamma_)
        self.intercept_ = float(self.intercept_scaling) ** 2 * float(np.mean(np.diag(k)))
        self.X_fit_, self.is_target_fit_ = X, is_target
        K = self._multitask(k, is_target, is_target)
        self.svc_ = SVC(kernel="precomputed", C=float(self.C), tol=float(self.tol)).fit(K, y)
        self.classes_ = self.svc_.classes_
        self.classifier_ = f"svc(multi-task {self.kernel} kernel)"
        mu = float(self.mu)
        c_paper = float(self.C) * task_weights(mu)[1]
        support = self.svc_.support_
        self.diagnostics_ = {
            "n_support": int(len(support)),
            "n_support_target": int(np.sum(is_target[support])),
            "mu": mu if np.isfinite(mu) else None,
            "lambda1": N_TASKS / (2 * c_paper),
            "lambda2": mu / (2 * c_paper) if np.isfinite(mu) else None,
            "C_paper": c_paper,
            "intercept_B": self.intercept_,
            "n_source": int(len(ys)),
            "n_target_labeled": int(is_target.sum()),
            "gamma": self.gamma_,
        }
        return self

    def _multitask(
        self, k: np.ndarray, rows_target: np.ndarray, cols_target: np.ndarray
    ) -> np.ndarray:
        """``K_mu`` from the base kernel ``k`` and the task of every row and column."""
        a, b = task_weights(float(self.mu))
        same = rows_target[:, None] == cols_target[None, :]
        return (a + b * same) * (k + self.intercept_)

    def _kernel_to_fit(self, X: Any, is_target: bool) -> np.ndarray:
        n = X.shape[0]
        rows = np.full(n, is_target)
        return self._multitask(
            base_kernel(X, self.X_fit_, self.kernel, self.gamma_), rows, self.is_target_fit_
        )

    def decision_function(self, X: Any, *, task: str = "target") -> np.ndarray:
        """The SVC's decision values of samples ``X`` of ``task`` (``"target"`` or ``"source"``)."""
        check_fitted(self, "svc_")
        if task not in ("target", "source"):
            raise ValueError(f"task must be 'target' or 'source', got {task!r}")
        is_target = task == "target"
        out = [
            self.svc_.decision_function(self._kernel_to_fit(X[i : i + PREDICT_BLOCK], is_target))
            for i in range(0, X.shape[0], PREDICT_BLOCK)
        ]
        return np.concatenate(out) if out else np.zeros(0)

    def _predict(self, X: Any, is_target: bool) -> np.ndarray:
        check_fitted(self, "svc_")
        out = [
            self.svc_.predict(self._kernel_to_fit(X[i : i + PREDICT_BLOCK], is_target))
            for i in range(0, X.shape[0], PREDICT_BLOCK)
        ]
        return np.concatenate(out) if out else np.zeros(0, dtype=self.classes_.dtype)

    def predict(self, X: Any) -> np.ndarray:
        """Labels of target samples (task ``t`` of the multi-task kernel)."""
        return self._predict(X, True)

    def predict_source(self, X: Any) -> np.ndarray:
        """Labels of source samples (task ``s``), as the selection protocols score them."""
        return self._predict(X, False)
