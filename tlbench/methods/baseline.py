"""Baselines every study reports: ``source_only``, ``target_only`` and ``source_and_target``.

``source_only`` trains a shallow classifier on the labeled source and applies it to the target
(DomainBed's ERM for shallow features; the "1NN" / "SVM" rows of the published tables).
``target_only`` trains on the labeled target samples only: with ``dataset.target_labeled``
set to a handful it is the few-shot lower bound that transfer must beat, with
``target_labeled=all`` (inductive protocol) it is the fully supervised upper bound.
``source_and_target`` trains on the union of both, without reweighting: the "SVMt" baseline of
Dai et al. (ICML 2007) that TrAdaBoost must beat on the same split.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import IncompatibleTaskError
from ..registry import register_method
from ..task import TransferTask
from .base import ShallowMixin, TransferMethod, source_and_labeled_target


class _ShallowBaseline(ShallowMixin, TransferMethod):
    """A shallow classifier trained on the samples :meth:`training_set` chooses.

    Parameters
    ----------
    estimator : {"knn1", "logreg", "linear_svm"}
        The classifier (see :func:`~tlbench.methods.base.make_estimator`).
    random_state : int, optional
        Seed for the classifier.

    Attributes
    ----------
    estimator_ : sklearn classifier
        The fitted classifier.
    classes_ : ndarray
        The class labels seen in training.
    """

    family: ClassVar[str] = "baseline"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})

    def __init__(self, *, estimator: str = "logreg", random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    @abstractmethod
    def training_set(self, task: TransferTask) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """Features, labels and sample weights to train on."""

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Fit the classifier on :meth:`training_set`."""
        self.check_task(task)
        X, y, weight = self.training_set(task)
        if len(np.unique(y)) < 2:
            raise IncompatibleTaskError(f"{self.name} needs training labels of two classes")
        self._fit_estimator(X, y, weight)
        return self


@register_method("source_only")
class SourceOnly(_ShallowBaseline):
    """Train on the labeled source only; no adaptation (parameters: see ``_ShallowBaseline``)."""

    paper: ClassVar[str] = "no adaptation (reference row of every table)"

    def training_set(self, task: TransferTask) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """The source samples (with their weights, if any)."""
        return task.source.X, task.source.y, task.source.weight


@register_method("target_only")
class TargetOnly(_ShallowBaseline):
    """Train on the labeled target samples only (needs ``dataset.target_labeled``).

    Parameters: see ``_ShallowBaseline``.
    """

    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = "no transfer: labeled target only (few-shot bound or upper bound)"

    def training_set(self, task: TransferTask) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """The labeled target samples."""
        labeled = task.target.labeled()
        return labeled.X, labeled.y, None


@register_method("source_and_target")
class SourceAndTarget(_ShallowBaseline):
    """Train on the labeled source plus the labeled target samples (SVMt; default linear SVM).

    Parameters: see ``_ShallowBaseline``.
    """

    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = "source + labeled target, no adaptation (SVMt of Dai et al. 2007)"

    def __init__(self, *, estimator: str = "linear_svm", random_state: int | None = None) -> None:
        super().__init__(estimator=estimator, random_state=random_state)

    def training_set(self, task: TransferTask) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """The source samples stacked with the labeled target samples."""
        X, y, _ = source_and_labeled_target(task)
        return X, y, None
