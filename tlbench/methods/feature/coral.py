"""CORrelation ALignment (CORAL).

Sun, Feng, Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016.
https://arxiv.org/abs/1511.05547

Aligns second-order statistics: the source samples are whitened with their own regularised
covariance and re-coloured with the target's, X_s* = X_s C_s^-1/2 C_t^1/2 with
C = cov + ``regularization`` * I; the classifier is trained on X_s* and applied to the target
samples unchanged. Matrix powers come from symmetric ``eigh`` in float64 (torch, any device).

Deviations from the paper
-------------------------
- None in the transform (lambda = 1 as in the paper). The paper's classifier is a linear SVM,
  the default (``estimator=linear_svm_cv``); ``estimator=knn1`` gives the 1-NN rows of the
  benchmark collection's TCA/JDA tables.
- ``estimator=linear_svm_cv`` is the protocol tlbench uses for the paper's Office-Caltech10 SURF
  row (48.8 on average; 47.80 here, ``experiments/feature/README.md``): a linear SVM (libsvm,
  one-vs-one) trained on the *whole* aligned source, its C chosen from 10^-3 .. 10^4 by
  stratified 5-fold cross-validation on the aligned source alone (no target label is read
  on the unsupervised tasks; with ``dataset.target_labeled`` the labeled target samples join
  the training set, unaligned, and so the cross-validation too).
  The paper's experimental section was not available to us; the grid follows the evaluation
  code of the SA/CORAL family as we recall it (the CORAL project page says it scores with SA's
  function; not verified), which uses 2 folds. With 2 folds the C chosen on the Caltech source
  changes with the split (average 46.63 - 47.80 over five splits); with 5 it does not. With C
  fixed at 1 (``linear_svm``) the average is 46.63.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ...errors import ConfigError, DataError
from ...kernels import as_tensor, mmd2_diagnostic
from ...registry import register_method
from ...task import TransferTask
from ..base import ESTIMATORS, check_fitted
from .tca import TorchMapping

#: ``estimator`` values CORAL accepts: the shared ones and the paper's cross-validated SVM.
CORAL_ESTIMATORS: tuple[str, ...] = (*ESTIMATORS, "linear_svm_cv")
#: The C grid of ``linear_svm_cv`` (10^-3 .. 10^4).
PAPER_C_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def sym_power(C: torch.Tensor, power: float) -> torch.Tensor:
    """C^power for a symmetric positive-definite matrix, through its eigendecomposition."""
    lam, V = torch.linalg.eigh(0.5 * (C + C.T))
    if not bool(lam.min() > 0):
        raise DataError("CORAL: a covariance is not positive definite; raise regularization")
    return (V * lam**power) @ V.T


def coral_map(X_source: torch.Tensor, X_target: torch.Tensor, reg: float) -> torch.Tensor:
    """The d x d matrix C_s^-1/2 C_t^1/2 (C = covariance + reg * I)."""
    eye = torch.eye(X_source.shape[1], dtype=X_source.dtype, device=X_source.device)
    Cs = torch.cov(X_source.T).reshape(eye.shape) + reg * eye
    Ct = torch.cov(X_target.T).reshape(eye.shape) + reg * eye
    return sym_power(Cs, -0.5) @ sym_power(Ct, 0.5)


@register_method("coral")
class CORAL(TorchMapping):
    """CORAL: re-colour the source with the target covariance, then train the classifier.

    Parameters
    ----------
    regularization : float, default=1.0
        lambda added to both covariance diagonals (Sun et al.: "lambda = 1").
    estimator : {"linear_svm_cv", "knn1", "logreg", "linear_svm"}, default="linear_svm_cv"
        Classifier on the aligned source. ``linear_svm`` has C = 1; ``linear_svm_cv`` (the
        paper's classifier, the protocol of its SURF table; the default) picks C from
        ``c_grid`` by ``cv_folds``-fold stratified cross-validation on the aligned labeled
        source (shuffled with ``random_state``; ties go to the smallest C), then refits on
        the whole source.
    c_grid : sequence of float, default=(1e-3, 1e-2, ..., 1e4)
        Candidate C values of ``linear_svm_cv``.
    cv_folds : int, default=5
        Folds of ``linear_svm_cv``'s source cross-validation. (With 2 folds, the convention of
        the SA/CORAL evaluation code as we recall it, the C chosen on the Caltech source
        changes with the split; 5 folds make the choice stable.)
    dtype : {"float64", "float32"}, default="float64"
        Precision of the matrix square roots.
    device : str, optional
        ``cpu``, ``cuda`` or ``auto``; default the trainer's device, else the CPU.
    random_state : int, optional
        Seed of the classifier.

    Attributes
    ----------
    mapping_ : ndarray of shape (d, d)
        C_s^-1/2 C_t^1/2, applied to source samples.
    diagnostics_ : dict
        ``mmd2_before`` / ``mmd2_after``: :func:`tlbench.kernels.mmd2_diagnostic` of source vs
        target before and after re-colouring the source; with ``linear_svm_cv`` also
        ``svm_c`` (the chosen C) and ``svm_cv_accuracy`` (its source cross-validation score).

    References
    ----------
    Sun, Feng, Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016.
    """

    paper: ClassVar[str] = "Sun, Feng, Saenko, Return of Frustratingly Easy DA, AAAI 2016"

    def __init__(
        self,
        *,
        regularization: float = 1.0,
        estimator: str = "linear_svm_cv",
        c_grid: Any = PAPER_C_GRID,
        cv_folds: int = 5,
        dtype: str = "float64",
        device: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.regularization = regularization
        self.estimator = estimator
        self.c_grid = c_grid
        self.cv_folds = cv_folds
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def fit_transform(self, task: TransferTask) -> tuple[np.ndarray, np.ndarray]:
        """Learn C_s^-1/2 C_t^1/2; return the aligned source and the unchanged target."""
        if not (isinstance(self.regularization, int | float) and self.regularization > 0):
            raise ConfigError(f"regularization must be > 0, got {self.regularization!r}")
        if self.dtype not in ("float64", "float32"):
            raise ConfigError(f"dtype must be float64 or float32, got {self.dtype!r}")
        if isinstance(self.estimator, str) and self.estimator not in CORAL_ESTIMATORS:
            raise ConfigError(
                f"unknown estimator {self.estimator!r}; choose one of {', '.join(CORAL_ESTIMATORS)}"
            )
        dt = torch.float64 if self.dtype == "float64" else torch.float32
        Xs = as_tensor(task.source.X, dtype=dt, device=self.device_)
        Xt = as_tensor(task.target.X, dtype=dt, device=self.device_)
        if Xs.shape[0] < 2 or Xt.shape[0] < 2:
            raise DataError("CORAL needs at least two samples per domain for a covariance")
        A = coral_map(Xs, Xt, float(self.regularization))
        self.n_features_in_ = Xs.shape[1]
        self.mapping_ = A.cpu().numpy()
        Zs = (Xs @ A).cpu().numpy()
        Zt = Xt.cpu().numpy()
        self.diagnostics_ = {
            "mmd2_before": mmd2_diagnostic(Xs, Xt),
            "mmd2_after": mmd2_diagnostic(Zs, Zt),
        }
        return Zs, Zt

    def _fit_estimator(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None):
        if self.estimator != "linear_svm_cv":
            return super()._fit_estimator(X, y, sample_weight)
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.svm import SVC

        # ascending, so that argmax (the first maximum) gives the smallest C among ties
        grid = sorted(float(c) for c in self.c_grid)
        if not grid or min(grid) <= 0:
            raise ConfigError(f"c_grid must hold positive values, got {list(self.c_grid)!r}")
        folds = self.cv_folds
        smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
        if not (isinstance(folds, int | np.integer) and 2 <= folds <= smallest):
            raise ConfigError(
                f"cv_folds must be an integer from 2 to {smallest} (the smallest source class), "
                f"got {folds!r}"
            )
        split = StratifiedKFold(int(folds), shuffle=True, random_state=self.random_state)
        scores = [cross_val_score(SVC(kernel="linear", C=c), X, y, cv=split).mean() for c in grid]
        best = int(np.argmax(scores))
        est = SVC(kernel="linear", C=grid[best], random_state=self.random_state).fit(X, y)
        self.diagnostics_.update(svm_c=grid[best], svm_cv_accuracy=float(scores[best]))
        self.estimator_, self.classes_ = est, est.classes_
        self.classifier_ = "linear_svm_cv"
        return est

    def transform(self, X: Any) -> np.ndarray:
        """Target samples are not transformed (CORAL moves the source only).

        Parameters
        ----------
        X : array-like of shape (n, d)
            Target samples.

        Returns
        -------
        X : ndarray of shape (n, d)
        """
        check_fitted(self, "mapping_")
        X = as_tensor(X, dtype=torch.float64).cpu().numpy()
        if X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1]} features; fitted on {self.n_features_in_}")
        return X

    def transform_source(self, X: Any) -> np.ndarray:
        """Re-colour source samples with the fitted map."""
        check_fitted(self, "mapping_")
        return as_tensor(X, dtype=torch.float64).cpu().numpy() @ self.mapping_
