"""What the multi-source boosting methods share: the round weight and base learners on subsets.

Both MsTrAdaBoost and TaskTrAdaBoost (Yao & Doretto, CVPR 2010) fit their base learner on
parts of one training matrix (a source, a source plus the labeled target) many times.
:class:`SubsetLearners` does it once for all: with a linear-kernel ``SVC`` it computes the
Gram matrix of the whole training matrix once and fits every round on its sub-matrix (the
same dual problem libsvm would solve on the raw features, as in
:mod:`tlbench.methods.instance.tradaboost`); at prediction time the kernel between the test
samples and each distinct training part is computed once for all the rounds fitted on it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ...errors import ConfigError, IncompatibleTaskError
from .._linear import GRAM_MAX_SAMPLES, PREDICT_BLOCK, uses_linear_kernel
from .._linear import linear_gram as _linear_gram
from ..base import source_and_labeled_target
from .tradaboost import _base_estimator

#: Floor of a round's weighted error, so that a perfect round has a finite weight.
EPS_FLOOR = 1e-10


def check_rounds(name: str, key: str, value: Any) -> int:
    """A number of boosting rounds: an integer >= 1, else a one-line :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"{name}: {key} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ConfigError(f"{name}: {key} must be an integer >= 1, got {value!r}")
    return int(value)


def base_learner_name(estimator: Any, random_state: int | None) -> str:
    """The base learner's name for the record; a bad ``estimator`` fails here, before work."""
    _base_estimator(estimator, random_state)
    return estimator if isinstance(estimator, str) else type(estimator).__name__


def boosting_problem(name: str, task: Any) -> tuple[Any, np.ndarray, int, int, np.ndarray]:
    """``X, y`` (the pooled sources, then the labeled target), ``n``, ``m`` and the classes.

    A labeled target of a single class is refused: the target error needs two.
    """
    labeled = task.target.labeled()
    if len(np.unique(labeled.y)) < 2:
        raise IncompatibleTaskError(
            f"{name}: the labeled target samples hold a single class; the target error needs "
            "at least two classes (raise dataset.target_labeled)"
        )
    X, y, _ = source_and_labeled_target(task)
    return X, y, len(task.source), len(labeled), np.unique(y)


def source_rows(task: Any) -> list[tuple[str, np.ndarray]]:
    """Each source's name and the rows of its samples in the pooled ``task.source``.

    A single-source task has one part. Sources left without samples (e.g. by a held-out
    split) are left out.
    """
    source = task.source
    if source.domain_index is None:
        return [(source.name, np.arange(len(source)))]
    parts = []
    for k, name in enumerate(source.domain_names):
        rows = np.flatnonzero(source.domain_index == k)
        if len(rows):
            parts.append((name, rows))
    return parts


def round_alpha(eps: float, n_classes: int) -> float:
    """The weight ``alpha`` of a boosting round with weighted error ``eps``.

    ``alpha = 1/2 (ln((1 - eps) / eps) + ln(K - 1))``: for two classes the paper's
    ``1/2 ln((1 - eps) / eps)``; for ``K > 2`` half the SAMME weight (Zhu, Zou, Rosset,
    Hastie, "Multi-class AdaBoost", 2009), which is positive while ``eps < (K - 1) / K``
    (better than chance). An error at or above chance gives ``0`` (the round has no say);
    ``eps`` is floored at :data:`EPS_FLOOR`.
    """
    eps = max(float(eps), EPS_FLOOR)
    if eps >= (n_classes - 1) / n_classes:
        return 0.0
    return 0.5 * (math.log((1.0 - eps) / eps) + math.log(n_classes - 1))


class SubsetLearners:
    """Fit a weighted base learner on row subsets of ``X``; predict on any rows or new data.

    Parameters
    ----------
    estimator : str or estimator
        The base learner (as TrAdaBoost's ``estimator``: ``linear_svm``, ``logreg``,
        ``decision_tree`` or a classifier whose ``fit`` takes ``sample_weight``).
    random_state : int or None
        Seed of the base learners.
    X : array or sparse matrix
        Every training sample (pooled sources, then the labeled target).
    y : ndarray of int
        Their labels.
    """

    def __init__(self, estimator: Any, random_state: int | None, X: Any, y: np.ndarray) -> None:
        self.estimator = estimator
        self.random_state = random_state
        self.X, self.y = X, y
        self.gram = uses_linear_kernel(_base_estimator(estimator, random_state)) and (
            X.shape[0] <= GRAM_MAX_SAMPLES
        )
        self.G = _linear_gram(X, X) if self.gram else None
        self.parts: dict[Hashable, np.ndarray] = {}

    def fit(self, part: Hashable, rows: np.ndarray, weight: np.ndarray) -> tuple[Hashable, Any]:
        """Fit on ``rows`` (the training part named ``part``) with ``weight`` (mean 1)."""
        known = self.parts.setdefault(part, rows)
        if known is not rows and not np.array_equal(known, rows):
            raise ValueError(f"part {part!r} was fitted on other rows before")
        est = _base_estimator(self.estimator, self.random_state)
        if self.gram:
            est.set_params(kernel="precomputed")
            est.fit(self.G[np.ix_(rows, rows)], self.y[rows], sample_weight=weight)
        else:
            est.fit(self.X[rows], self.y[rows], sample_weight=weight)
        return part, est

    def predict_rows(self, fitted: tuple[Hashable, Any], rows: np.ndarray) -> np.ndarray:
        """Predictions of a fitted learner on training rows ``rows``."""
        part, est = fitted
        if self.gram:
            return est.predict(self.G[np.ix_(rows, self.parts[part])])
        return est.predict(self.X[rows])

    def freeze(self) -> FittedLearners:
        """What prediction needs: each part's training samples (the Gram matrix is dropped)."""
        return FittedLearners(self.gram, {p: self.X[r] for p, r in self.parts.items()})


class FittedLearners:
    """The training parts of fitted :class:`SubsetLearners`, to predict on new samples."""

    def __init__(self, gram: bool, X_parts: dict[Hashable, Any]) -> None:
        self.gram = gram
        self.X_parts = X_parts

    def predict_all(self, learners: Sequence[tuple[Hashable, Any]], X: Any) -> np.ndarray:
        """``(len(learners), n)`` predictions; one kernel block per training part."""
        out = None
        step = PREDICT_BLOCK if self.gram else max(X.shape[0], 1)
        for start in range(0, X.shape[0], step):
            Xb = X[start : start + step]
            kernels = {}
            rows = []
            for part, est in learners:
                if self.gram:
                    if part not in kernels:
                        kernels[part] = _linear_gram(Xb, self.X_parts[part])
                    rows.append(est.predict(kernels[part]))
                else:
                    rows.append(est.predict(Xb))
            block = np.asarray(rows)
            out = block if out is None else np.concatenate([out, block], axis=1)
        return out if out is not None else np.empty((len(learners), 0), dtype=np.int64)


def weighted_vote(
    predictions: np.ndarray, alphas: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``alpha``-weighted vote of the rounds: labels and each class's share of the vote.

    Rounds with ``alpha = 0`` have no say; when every round has ``alpha = 0`` they vote
    equally. Ties go to the class listed first (for two classes the paper's
    ``sign(sum_t alpha_t h_t(x))`` with ``sign(0)`` unspecified).
    """
    alphas = np.asarray(alphas, dtype=float)
    if not np.any(alphas > 0):
        alphas = np.ones_like(alphas)
    votes = np.zeros((predictions.shape[1], len(classes)))
    for alpha, pred in zip(alphas, predictions, strict=True):
        votes[np.arange(len(pred)), np.searchsorted(classes, pred)] += alpha
    share = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-300)
    return classes[np.argmax(votes, axis=1)], share


class WeightedVoteMixin:
    """``predict`` / ``predict_proba`` of a boosting method: the ``alpha``-weighted vote.

    The method sets ``_rounds`` (fitted learners), ``_learners`` (:class:`FittedLearners`),
    ``alphas_``, ``classes_`` and ``estimators_``.
    """

    def _vote(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "estimators_")
        predictions = self._learners.predict_all(self._rounds, X)
        return weighted_vote(predictions, self.alphas_, self.classes_)

    def predict(self, X: Any) -> np.ndarray:
        """``sign(sum_t alpha_t h_t(x))`` (two classes) or the weighted plurality vote."""
        return self._vote(X)[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each class's share of the weighted vote (not in the paper)."""
        return self._vote(X)[1]
