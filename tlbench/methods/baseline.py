"""Baselines every study reports: ``source_only`` (no adaptation) and ``target_only``.

``source_only`` trains a shallow classifier on the labeled source and applies it to the target
(DomainBed's ERM for shallow features; the "1NN" / "SVM" rows of the published tables).
``target_only`` trains on the labeled target samples only: with ``dataset.target_labeled``
set to a handful it is the few-shot lower bound that transfer must beat, with
``target_labeled=all`` (inductive protocol) it is the fully supervised upper bound.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..registry import register_method
from ..task import TransferTask
from .base import ShallowMixin, TransferMethod

try:
    from typing import Self
except ImportError:  # pragma: no cover
    from typing_extensions import Self


@register_method("source_only")
class SourceOnly(ShallowMixin, TransferMethod):
    """Train on the labeled source only; no adaptation.

    Parameters
    ----------
    estimator : {"knn1", "logreg", "linear_svm"}, default="logreg"
        The classifier (see :func:`~tlbench.methods.base.make_estimator`).
    random_state : int, optional
        Seed for the classifier.

    Attributes
    ----------
    estimator_ : sklearn classifier
        The fitted classifier.
    classes_ : ndarray
        The class labels seen in the source.
    """

    family: ClassVar[str] = "baseline"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    paper: ClassVar[str] = "no adaptation (reference row of every table)"

    def __init__(self, *, estimator: str = "logreg", random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Fit the classifier on the source samples."""
        self.check_task(task)
        self._fit_estimator(task.source.X, task.source.y, task.source.weight)
        return self


@register_method("target_only")
class TargetOnly(ShallowMixin, TransferMethod):
    """Train on the labeled target samples only (needs ``dataset.target_labeled``).

    Parameters
    ----------
    estimator : {"knn1", "logreg", "linear_svm"}, default="logreg"
        The classifier (see :func:`~tlbench.methods.base.make_estimator`).
    random_state : int, optional
        Seed for the classifier.

    Attributes
    ----------
    estimator_ : sklearn classifier
        The fitted classifier.
    classes_ : ndarray
        The class labels seen in the labeled target.
    """

    family: ClassVar[str] = "baseline"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = "no transfer: labeled target only (few-shot bound or upper bound)"

    def __init__(self, *, estimator: str = "logreg", random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Fit the classifier on the labeled target samples."""
        self.check_task(task)
        labeled = task.target.labeled()
        if len(set(labeled.y.tolist())) < 2:
            from ..errors import IncompatibleTaskError

            raise IncompatibleTaskError("target_only needs labeled target samples of two classes")
        self._fit_estimator(labeled.X, labeled.y)
        return self
