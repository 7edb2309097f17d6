"""The method contract: :class:`TransferMethod` and the optional shallow family helpers.

A method is a scikit-learn-style estimator whose ``fit`` takes a whole
:class:`~tlbench.task.TransferTask` (and, for deep methods, the trainer). The constructor
stores hyperparameters and nothing else; ``fit`` validates them, draws randomness from
``random_state``, sets fitted attributes ending in ``_`` and returns ``self``; ``predict``
starts with ``check_is_fitted``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from ..errors import ConfigError, IncompatibleTaskError
from ..task import TransferTask

#: The shallow classifiers every method that ends in one accepts as ``estimator``.
ESTIMATORS: tuple[str, ...] = ("knn1", "logreg", "linear_svm")


def make_estimator(name: str | BaseEstimator, random_state: int | None = None) -> BaseEstimator:
    """Build the shallow classifier named by ``method.estimator``.

    Parameters
    ----------
    name : {"knn1", "logreg", "linear_svm"} or estimator
        ``knn1``: 1-nearest neighbour (Euclidean), the classifier of the TCA/JDA tables;
        ``logreg``: L2-regularised logistic regression (C=1, lbfgs);
        ``linear_svm``: linear SVM (C=1, hinge loss, libsvm's exact dual solver, one-vs-one),
        the "SVM" of the published tables. (liblinear's ``LinearSVC`` took 66-190 s on one
        Office-Caltech SURF task without converging; libsvm takes about a second.) A
        scikit-learn classifier instance is cloned and used as is.
    random_state : int, optional
        Seed for the estimators that use randomness.

    Returns
    -------
    estimator : sklearn classifier
        An unfitted estimator.
    """
    if isinstance(name, BaseEstimator):
        return clone(name)
    if name == "knn1":
        return KNeighborsClassifier(n_neighbors=1)
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)
    if name == "linear_svm":
        return SVC(kernel="linear", C=1.0, random_state=random_state)
    raise ConfigError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")


class TransferMethod(BaseEstimator, ClassifierMixin, ABC):
    """Base class of every transfer method.

    Subclasses set the class attributes below, are decorated with
    ``@register_method("<name>")`` and implement :meth:`fit` and :meth:`predict`.

    Attributes
    ----------
    name : str
        The registry name (set by the decorator).
    family : str
        ``baseline``, ``instance``, ``feature``, ``parameter`` or ``relational``.
    supports : frozenset of str
        The task kinds it can run on.
    needs_target_labels : bool
        Whether ``fit`` needs labeled target samples.
    paper : str
        Short citation of the method's paper (empty for baselines).
    multi_source : {"pooled", "per_source", "refuse"}
        How it reads a multi-source task (``dataset.source=[a,b,c]``): ``pooled`` (the
        default) trains on the pooled sources as on one source, and the record says
        ``source_mode: pooled``; ``per_source`` uses each source on its own
        (``task.sources``); ``refuse`` makes a multi-source task ``skipped`` with the reason.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    supports: ClassVar[frozenset[str]] = frozenset()
    needs_target_labels: ClassVar[bool] = False
    paper: ClassVar[str] = ""
    multi_source: ClassVar[str] = "pooled"
    #: what makes the final prediction (records and reports show it when rows differ in it);
    #: methods ending in a scikit-learn estimator record its name as ``classifier_`` instead
    final_classifier: ClassVar[str] = ""

    @abstractmethod
    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Learn from ``task`` (which never contains the test data); return ``self``."""

    @abstractmethod
    def predict(self, X: Any) -> np.ndarray:
        """Predict target-domain labels for ``X``."""

    def predict_source(self, X: Any) -> np.ndarray:
        """Predict labels of *source-domain* samples ``X``, as the method treats the source.

        The selection protocols score held-out source samples through this hook
        (:mod:`tlbench.selection`). A method that maps the two domains differently (CORAL
        re-colours the source only) must apply its source map here; the default, ``predict``,
        is right when one model serves both domains.
        """
        return self.predict(X)

    def check_sources(self, task: TransferTask) -> None:
        """Refuse a multi-source task when the method declares ``multi_source = "refuse"``."""
        if task.is_multi_source and self.multi_source == "refuse":
            label = self.name or type(self).__name__
            raise IncompatibleTaskError(
                f"method {label!r} cannot pool several source domains and the task has "
                f"{len(task.source_names)} ({', '.join(task.source_names)}); give one "
                "dataset.source"
            )
        if self.multi_source not in ("pooled", "per_source", "refuse"):
            raise ConfigError(
                f"{type(self).__name__}.multi_source must be pooled, per_source or refuse, "
                f"got {self.multi_source!r}"
            )

    def check_task(self, task: TransferTask) -> None:
        """Refuse a task this method cannot run on, with :class:`IncompatibleTaskError`.

        Parameters
        ----------
        task : TransferTask
            The task given to ``fit``.
        """
        label = self.name or type(self).__name__
        self.check_sources(task)
        if task.kind not in self.supports:
            raise IncompatibleTaskError(
                f"method {label!r} supports {sorted(self.supports)} tasks, not {task.kind!r}"
            )
        if self.needs_target_labels and task.target.n_labeled == 0:
            raise IncompatibleTaskError(
                f"method {label!r} needs labeled target samples and the target has none "
                "(set dataset.target_labeled)"
            )


class ShallowMixin:
    """Delegation to a fitted scikit-learn ``estimator_`` (after an optional transform)."""

    def _features(self, X: Any) -> Any:
        return X

    def predict(self, X: Any) -> np.ndarray:
        """Predict labels with the fitted estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(self._features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, when the estimator provides them."""
        check_is_fitted(self, "estimator_")
        if not hasattr(self.estimator_, "predict_proba"):
            raise AttributeError(f"estimator {self.estimator!r} has no predict_proba")
        return self.estimator_.predict_proba(self._features(X))

    def _fit_estimator(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None):
        from ._linear import fit_linear_svc

        est = make_estimator(self.estimator, getattr(self, "random_state", None))
        if sample_weight is not None and isinstance(est, KNeighborsClassifier):
            raise ConfigError(
                "estimator 'knn1' cannot use sample weights; choose logreg or linear_svm"
            )
        if isinstance(est, SVC):  # sparse inputs: the same SVM, trained on its Gram matrix
            est = fit_linear_svc(est, X, y, sample_weight)
        elif sample_weight is not None:
            est.fit(X, y, sample_weight=sample_weight)
        else:
            est.fit(X, y)
        self.estimator_ = est
        self.classes_ = est.classes_
        named = isinstance(self.estimator, str)
        self.classifier_ = self.estimator if named else type(self.estimator).__name__
        return est


def source_and_labeled_target(
    task: TransferTask, source_weight: np.ndarray | None = None
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """Stack the labeled source and the labeled target samples into one training set.

    Parameters
    ----------
    task : TransferTask
        The task; target samples without a label are left out.
    source_weight : ndarray, optional
        Weights of the source samples; labeled target samples then get weight 1.

    Returns
    -------
    X, y, sample_weight
        Features (dense or sparse, as given), labels and weights (``None`` when
        ``source_weight`` is ``None``).
    """
    import scipy.sparse as sp

    X, y, w = task.source.X, task.source.y, source_weight
    labeled = task.target.labeled()
    if len(labeled) == 0:
        return X, y, w
    stack = sp.vstack if sp.issparse(X) or sp.issparse(labeled.X) else np.vstack
    if w is not None:
        w = np.concatenate([w, np.ones(len(labeled))])
    return stack([X, labeled.X]), np.concatenate([y, labeled.y]), w


class ReweightingMethod(ShallowMixin, TransferMethod):
    """Helper for instance reweighting: the subclass writes :meth:`compute_weights`.

    ``fit`` trains ``estimator`` on the source samples with ``sample_weight`` set to the
    computed weights (plus any labeled target samples, with weight 1).
    """

    family: ClassVar[str] = "instance"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})

    @abstractmethod
    def compute_weights(self, task: TransferTask) -> np.ndarray:
        """Return one non-negative weight per source sample."""

    def check_weighted_estimator(self) -> None:
        """Refuse, before any work, a classifier whose ``fit`` would ignore the weights."""
        from sklearn.utils.validation import has_fit_parameter

        est = make_estimator(self.estimator, getattr(self, "random_state", None))
        if not has_fit_parameter(est, "sample_weight"):
            label = self.name or type(self).__name__
            raise ConfigError(
                f"{label}: estimator {self.estimator!r} cannot use sample weights, so it would "
                "ignore the source weights; choose logreg, linear_svm or a classifier whose "
                "fit accepts sample_weight"
            )

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Compute source weights, then fit the weighted estimator."""
        self.check_task(task)
        weights = np.asarray(self.compute_weights(task), dtype=float)
        if weights.shape != (len(task.source),):
            raise ValueError(f"compute_weights returned shape {weights.shape}")
        self.weights_ = weights
        X, y, w = source_and_labeled_target(task, weights)
        self._fit_estimator(X, y, sample_weight=w)
        return self


class MappingMethod(ShallowMixin, TransferMethod):
    """Helper for feature mapping: the subclass writes :meth:`fit_transform` and :meth:`transform`.

    ``fit`` trains ``estimator`` on the mapped source samples; ``predict`` maps, then classifies.
    """

    family: ClassVar[str] = "feature"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})

    @abstractmethod
    def fit_transform(self, task: TransferTask) -> tuple[np.ndarray, np.ndarray]:
        """Learn the mapping; return the mapped source and target training samples."""

    @abstractmethod
    def transform(self, X: Any) -> np.ndarray:
        """Map target-domain samples."""

    def transform_source(self, X: Any) -> np.ndarray:
        """Map source-domain samples (default: the target's map, one map for both)."""
        return self.transform(X)

    def _features(self, X: Any) -> Any:
        return self.transform(X)

    def predict_source(self, X: Any) -> np.ndarray:
        """Classify source-domain samples in the space the classifier was trained in."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(self.transform_source(X))

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Learn the mapping, then fit the estimator on the mapped source (and labeled target)."""
        self.check_task(task)
        Z_source, Z_target = self.fit_transform(task)
        Z, y = Z_source, task.source.y
        if task.target.n_labeled:
            mask = task.target.y != -1
            Z = np.vstack([Z, Z_target[mask]])
            y = np.concatenate([y, task.target.y[mask]])
        self._fit_estimator(Z, y)
        return self


#: scikit-learn's ``check_is_fitted``, re-exported for method files.
check_fitted = check_is_fitted
