"""Baselines: ``source_only``, ``target_only``, ``source_and_target``, ``best_single_source``.

``source_only`` trains a shallow classifier on the labeled source and applies it to the target
(DomainBed's ERM for shallow features; the "1NN" / "SVM" rows of the published tables).
``target_only`` trains on the labeled target samples only: with ``dataset.target_labeled``
set to a handful it is the few-shot lower bound that transfer must beat, with
``target_labeled=all`` (inductive protocol) it is the fully supervised upper bound.
``source_and_target`` trains on the union of both, without reweighting: the "SVMt" baseline of
Dai et al. (ICML 2007) that TrAdaBoost must beat on the same split. On a multi-source task the
three read the pooled sources (``source_mode: pooled`` in the record). ``best_single_source``
trains on one of the sources, chosen without the target's test labels (see its docstring).
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


#: How ``best_single_source`` ranks the sources.
CRITERIA = ("auto", "labeled_target", "a_distance")


def proxy_a_distance(Xa: Any, Xb: Any, random_state: int | None = None) -> float:
    """Proxy A-distance ``2 (1 - 2 err)`` between two samples (Ben-David et al., NIPS 2006).

    ``err`` is the 2-fold cross-validated error of an L2 logistic regression telling the two
    samples apart (the classes balanced by weighting); 0 when they cannot be told apart, 2
    when they are perfectly separable. Labels are not used.
    """
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    stack = sp.vstack if sp.issparse(Xa) or sp.issparse(Xb) else np.vstack
    X = stack([Xa, Xb])
    d = np.r_[np.zeros(Xa.shape[0], dtype=int), np.ones(Xb.shape[0], dtype=int)]
    clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=random_state)
    pred = cross_val_predict(clf, X, d, cv=folds)
    err = 0.5 * (np.mean(pred[d == 0] != 0) + np.mean(pred[d == 1] != 1))  # balanced error
    return float(2.0 * (1.0 - 2.0 * min(err, 0.5)))


@register_method("best_single_source")
class BestSingleSource(_ShallowBaseline):
    """Train on the one source that looks best for the target, chosen without test labels.

    A multi-source baseline: every source gets its own classifier (``estimator``), and the
    source is chosen by ``criterion``:

    - ``labeled_target``: the most accurate on the labeled target *training* samples
      (``dataset.target_labeled``; never the test samples); ties go to the smaller proxy
      A-distance;
    - ``a_distance``: the smallest proxy A-distance (:func:`proxy_a_distance`) between the
      source's inputs and the target's training inputs (no labels at all);
    - ``auto`` (default): ``labeled_target`` when the target has labeled samples, else
      ``a_distance``.

    The chosen source's classifier predicts the target (with ``add_labeled_target`` it is
    refitted on that source plus the labeled target samples). On a single-source task it is
    ``source_only``.

    Parameters
    ----------
    estimator : {"knn1", "logreg", "linear_svm"}, default="linear_svm"
        The classifier.
    criterion : {"auto", "labeled_target", "a_distance"}, default="auto"
        How the source is chosen.
    add_labeled_target : bool, default=False
        Refit the chosen source's classifier with the labeled target samples added.
    random_state : int, optional
        Seed of the classifier and of the A-distance folds.

    Attributes
    ----------
    source_ : str
        The chosen source.
    scores_ : dict
        Per source: its labeled-target accuracy (when used) and proxy A-distance.
    """

    multi_source: ClassVar[str] = "per_source"
    paper: ClassVar[str] = (
        "best single source chosen without test labels (proxy A-distance: Ben-David, Blitzer, "
        "Crammer, Pereira, NIPS 2006)"
    )

    def __init__(
        self,
        *,
        estimator: str = "linear_svm",
        criterion: str = "auto",
        add_labeled_target: bool = False,
        random_state: int | None = None,
    ) -> None:
        super().__init__(estimator=estimator, random_state=random_state)
        self.criterion = criterion
        self.add_labeled_target = add_labeled_target

    def training_set(self, task: TransferTask) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """The chosen source (plus the labeled target with ``add_labeled_target``)."""
        from dataclasses import replace

        source = next(d for d in task.sources if d.name == self.source_)
        if self.add_labeled_target:
            X, y, _ = source_and_labeled_target(replace(task, source=source))
            return X, y, None
        return source.X, source.y, source.weight

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Rank the sources by ``criterion``, then fit the classifier on the chosen one."""
        from ..errors import ConfigError

        if self.criterion not in CRITERIA:
            raise ConfigError(
                f"best_single_source: unknown criterion {self.criterion!r}; choose one of "
                f"{', '.join(CRITERIA)}"
            )
        self.check_task(task)
        criterion = self.criterion
        labeled = task.target.labeled()
        if criterion == "auto":
            criterion = "labeled_target" if len(labeled) else "a_distance"
        if criterion == "labeled_target" and not len(labeled):
            raise IncompatibleTaskError(
                "best_single_source: criterion=labeled_target needs labeled target samples "
                "(set dataset.target_labeled)"
            )
        scores: dict[str, dict[str, float]] = {}
        for source in task.sources:
            entry = {"a_distance": proxy_a_distance(source.X, task.target.X, self.random_state)}
            if criterion == "labeled_target":
                self._fit_estimator(source.X, source.y, source.weight)
                entry["labeled_target_accuracy"] = float(
                    np.mean(self.estimator_.predict(labeled.X) == labeled.y)
                )
            scores[source.name] = entry

        def rank(name: str) -> tuple[float, float]:
            entry = scores[name]
            return (-entry.get("labeled_target_accuracy", 0.0), entry["a_distance"])

        self.source_ = min(scores, key=rank)  # dicts keep the sources' order: ties go first
        self.scores_ = scores
        self.criterion_ = criterion
        super().fit(task)
        self.diagnostics_ = {"chosen_source": self.source_, "criterion": criterion,
                             "scores": scores}  # fmt: skip
        return self
