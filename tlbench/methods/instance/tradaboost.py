"""TrAdaBoost: boosting that lets misleading source samples fade out.

Dai, Yang, Xue, Yu, "Boosting for Transfer Learning", ICML 2007, Algorithm 1. The training set
is the ``n`` source samples (the paper's diff-distribution data ``T_d``) followed by the ``m``
labeled target samples (same-distribution data ``T_s``). With weights ``w`` (uniform at start),
each round ``t = 1 .. N``:

1. ``p = w / sum(w)``; train the base learner ``h_t`` on all ``n + m`` samples weighted by ``p``;
2. ``eps_t`` = the ``w``-weighted error of ``h_t`` on the labeled target only;
3. ``beta_t = eps_t / (1 - eps_t)`` and ``beta = 1 / (1 + sqrt(2 ln n / N))``;
4. source weights ``w_i <- w_i * beta ** |h_t(x_i) - y_i|`` (a misclassified source sample
   loses weight), target weights ``w_i <- w_i * beta_t ** -|h_t(x_i) - y_i|`` (a misclassified
   target sample gains weight, as in AdaBoost).

The final hypothesis votes with the second half of the rounds, ``t = ceil(N/2) .. N``:
``h_f(x) = 1`` iff ``prod_t beta_t ** -h_t(x) >= prod_t beta_t ** -1/2``, i.e. iff
``sum_t ln(1/beta_t) h_t(x) >= 1/2 sum_t ln(1/beta_t)``.

Degenerate rounds (the paper assumes ``0 < eps_t < 1/2``, as AdaBoost does):

- ``eps_t = 0`` (every labeled target sample right): ``eps_t`` is floored at ``1e-10``, so
  ``beta_t`` is tiny but positive: the round gets a large finite vote and no target weight
  changes (no target sample is misclassified); no division by zero.
- ``eps_t >= 1/2``: ``eps_t`` is capped at ``1/2``, so ``beta_t = 1``: the round gets no vote and
  the target weights stay; the source weights still decay by the paper's fixed ``beta``.

Deviations from the paper
-------------------------
- ``multiclass=True`` (the default) extends the algorithm to more than two classes, which the
  paper does not cover: ``|h_t(x) - y|`` becomes the 0/1 loss ``[h_t(x) != y]`` and the final
  hypothesis is the ``ln(1/beta_t)``-weighted plurality vote of the second half. On two classes
  this is exactly the paper's algorithm (its tie goes to class 1, as the paper's ``>=``).
  ``multiclass=False`` refuses tasks with more than two classes.
- When every voting round has ``beta_t = 1`` (``eps_t >= 1/2`` throughout the second half),
  the paper's rule would predict class 1 everywhere; tlbench lets those rounds vote equally.
- Capping ``eps_t`` at 1/2 (above) is ours: the paper assumes it never happens. The literal
  formula would give ``beta_t > 1`` (misclassified target samples lose weight, the round votes
  against its own hypothesis) and divide by zero at ``eps_t = 1``.
- ``predict_proba`` (not in the paper) returns each class's share of the final vote.
- Weights are renormalised every round (the paper normalises only when it forms ``p``; the
  two are the same algorithm, renormalising keeps ``beta ** t`` from underflowing), and the
  base learner receives ``p * (n + m)`` (mean weight 1, so its regularisation constant keeps its
  unweighted meaning).
- The paper lets the user choose the initial weights; tlbench starts uniform.

Speed (not a deviation: the same classifiers up to round-off)
------------------------------------------------------------
With a linear-kernel ``SVC`` base learner (``estimator="linear_svm"``, the default, or any
``SVC(kernel="linear")`` instance) and at most :data:`GRAM_MAX_SAMPLES` training samples, the
linear Gram matrix ``X X^T`` of the source + labeled target samples is computed once (one matrix
product) and every round trains the same ``SVC`` with ``kernel="precomputed"`` on it: libsvm
then solves the same dual problem with the same solver and stopping rule, but reads kernel
values instead of recomputing ``N`` times the dot products of every pair (on sparse 5000-dim
Amazon reviews, 20 rounds took minutes). Prediction computes ``X_test X^T`` once, in row blocks,
for all voting rounds. The kernel values differ from libsvm's own dot products only by
floating-point summation order. ``estimators_`` then hold :class:`PrecomputedLinearSVC`
rounds, which predict from raw features like the ``SVC(kernel="linear")`` they stand for.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ...errors import ConfigError, IncompatibleTaskError
from ...registry import register_method
from ...task import TransferTask
from .. import _linear
from .._linear import PrecomputedLinearSVC
from ..base import TransferMethod, make_estimator

__all__ = ["PrecomputedLinearSVC", "TrAdaBoost"]

#: Floor of the target error, so that a perfect round (eps_t = 0) has a finite vote.
EPS_FLOOR = 1e-10

#: Largest training set (source + labeled target) for which a linear-kernel SVC base learner
#: trains on the precomputed Gram matrix (8 * n^2 bytes: 800 MB at 10,000).
GRAM_MAX_SAMPLES = _linear.GRAM_MAX_SAMPLES

#: Test rows whose kernel against the training samples is computed at a time in ``predict``.
PREDICT_BLOCK = _linear.PREDICT_BLOCK

_linear_gram = _linear.linear_gram
_uses_linear_kernel = _linear.uses_linear_kernel


def _base_estimator(name: str | BaseEstimator, random_state: int | None) -> BaseEstimator:
    if name == "decision_tree":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=3, random_state=random_state)
    if name == "knn1":
        raise ConfigError(
            "tradaboost: estimator 'knn1' cannot use sample weights, which boosting needs; "
            "choose linear_svm, logreg, decision_tree or a classifier whose fit accepts "
            "sample_weight"
        )
    est = make_estimator(name, random_state)
    if not has_fit_parameter(est, "sample_weight"):
        raise ConfigError(
            f"tradaboost: estimator {name!r} does not accept sample_weight in fit, which "
            "boosting needs"
        )
    return est


@register_method("tradaboost")
class TrAdaBoost(TransferMethod):
    """TrAdaBoost (Dai et al., ICML 2007) with a weighted base classifier.

    Parameters
    ----------
    n_estimators : int, default=20
        Boosting rounds ``N`` (the paper uses up to 100).
    estimator : str or estimator, default="linear_svm"
        Base learner: ``linear_svm`` (the paper's choice), ``logreg``, ``decision_tree``
        (depth 3) or any scikit-learn classifier whose ``fit`` accepts ``sample_weight``.
    multiclass : bool, default=True
        Allow more than two classes with the 0/1-loss extension (a deviation from the paper;
        see the module docstring). ``False``: two-class tasks only.
    random_state : int, optional
        Seed of the base learners.

    Attributes
    ----------
    estimators_ : list of sklearn classifiers
        The ``N`` fitted rounds.
    target_errors_ : ndarray of shape (N,)
        ``eps_t`` as measured (before the floor / cap).
    betas_ : ndarray of shape (N,)
        ``beta_t`` as used.
    beta_ : float
        The source factor ``1 / (1 + sqrt(2 ln n / N))``.
    classes_ : ndarray
        The class labels.
    gram_ : bool
        Whether the rounds trained a linear-kernel SVC on the precomputed Gram matrix (see
        "Speed" in the module docstring); ``estimators_`` are then
        :class:`PrecomputedLinearSVC`, which predict from raw features.
    diagnostics_ : dict
        ``beta``, the mean target error, the number of degenerate rounds, the final share
        of the weight held by the source samples, and whether the Gram-matrix path was used.
    """

    family: ClassVar[str] = "instance"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    needs_target_labels: ClassVar[bool] = True
    paper: ClassVar[str] = "Dai, Yang, Xue, Yu. Boosting for Transfer Learning. ICML 2007"

    def __init__(
        self,
        *,
        n_estimators: int = 20,
        estimator: Any = "linear_svm",
        multiclass: bool = True,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.estimator = estimator
        self.multiclass = multiclass
        self.random_state = random_state

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Run the boosting rounds on the source and the labeled target samples."""
        N = self.n_estimators
        if isinstance(N, bool) or int(N) != N or N < 1:
            raise ConfigError(f"tradaboost: n_estimators must be an integer >= 1, got {N!r}")
        N = int(N)
        _base_estimator(self.estimator, self.random_state)  # fail early on a bad estimator
        base = self.estimator if isinstance(self.estimator, str) else type(self.estimator).__name__
        self.classifier_ = f"boosted {base}"
        self.check_task(task)
        labeled = task.target.labeled()
        if len(np.unique(labeled.y)) < 2:
            raise IncompatibleTaskError(
                f"tradaboost: the labeled target samples hold a single class "
                f"({int(labeled.y[0])}); the target error needs at least two classes "
                "(raise dataset.target_labeled)"
            )
        classes = np.unique(np.concatenate([task.source.y, labeled.y]))
        if len(classes) > 2 and not self.multiclass:
            raise IncompatibleTaskError(
                f"tradaboost: the task has {len(classes)} classes and multiclass=False (the "
                "paper's algorithm is for two classes); set method.multiclass=true"
            )
        Xs, ys = task.source.X, task.source.y
        stack = sp.vstack if sp.issparse(Xs) or sp.issparse(labeled.X) else np.vstack
        X = stack([Xs, labeled.X])
        y = np.concatenate([ys, labeled.y])
        n, m = len(ys), len(labeled.y)
        is_target = np.arange(n + m) >= n

        beta = 1.0 / (1.0 + math.sqrt(2.0 * math.log(n) / N))
        w = np.full(n + m, 1.0 / (n + m))
        estimators, errors, betas = [], [], []
        gram = _uses_linear_kernel(_base_estimator(self.estimator, self.random_state)) and (
            n + m <= GRAM_MAX_SAMPLES
        )
        # the linear kernel of the training samples, computed once for every round
        X_fit = _linear_gram(X, X) if gram else X
        for _ in range(N):
            est = _base_estimator(self.estimator, self.random_state)
            if gram:
                est.set_params(kernel="precomputed")  # a fresh copy: only its kernel changes
            p = w / w.sum()
            est.fit(X_fit, y, sample_weight=p * (n + m))
            wrong = (est.predict(X_fit) != y).astype(float)  # |h - y| for labels {0, 1}
            if gram:
                est = PrecomputedLinearSVC(est, X)
            eps = float(np.sum(w[is_target] * wrong[is_target]) / np.sum(w[is_target]))
            eps_used = min(max(eps, EPS_FLOOR), 0.5)
            beta_t = eps_used / (1.0 - eps_used)
            w = np.where(is_target, w * beta_t ** (-wrong), w * beta**wrong)
            w /= w.sum()
            estimators.append(est)
            errors.append(eps)
            betas.append(beta_t)
        self.estimators_ = estimators
        self.target_errors_ = np.asarray(errors)
        self.betas_ = np.asarray(betas)
        self.beta_ = beta
        self.classes_ = classes
        self.n_source_ = n
        self.gram_ = gram
        degenerate = int(np.sum((self.target_errors_ == 0) | (self.target_errors_ >= 0.5)))
        self.diagnostics_ = {
            "beta": beta,
            "mean_target_error": float(self.target_errors_.mean()),
            "last_target_error": float(self.target_errors_[-1]),
            "degenerate_rounds": degenerate,
            "source_weight_share": float(w[:n].sum()),
            "n_source": n,
            "n_target_labeled": m,
            "precomputed_linear_kernel": gram,
        }
        return self

    def _votes(self, X: Any) -> np.ndarray:
        """Per-class ``ln(1/beta_t)``-weighted votes of rounds ceil(N/2) .. N."""
        check_is_fitted(self, "estimators_")
        N = len(self.estimators_)
        first = math.ceil(N / 2) - 1  # 0-based index of round ceil(N/2)
        alphas = np.log(1.0 / self.betas_[first:])
        if not np.any(alphas > 0):  # every voting round had eps_t >= 1/2: vote equally
            alphas = np.ones_like(alphas)
        votes = np.zeros((X.shape[0], len(self.classes_)))
        voters = self.estimators_[first:]
        step = PREDICT_BLOCK if self.gram_ else max(X.shape[0], 1)
        for start in range(0, X.shape[0], step):
            rows = slice(start, start + step)
            if self.gram_:  # one kernel block for every voting round
                Xb = _linear_gram(X[rows], voters[0].X_train)
                predictors = [est.svc.predict for est in voters]
            else:
                Xb = X[rows]
                predictors = [est.predict for est in voters]
            idx = np.arange(start, start + Xb.shape[0])
            for alpha, predict in zip(alphas, predictors, strict=True):
                votes[idx, np.searchsorted(self.classes_, predict(Xb))] += alpha
        return votes

    def predict(self, X: Any) -> np.ndarray:
        """The final hypothesis: the paper's threshold rule (two classes) or plurality vote."""
        votes = self._votes(X)
        if len(self.classes_) == 2:
            # sum alpha_t h_t(x) >= 1/2 sum alpha_t  <=>  vote(1) >= vote(0)
            return np.where(votes[:, 1] >= votes[:, 0], self.classes_[1], self.classes_[0])
        return self.classes_[np.argmax(votes, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each class's share of the final weighted vote (not in the paper)."""
        votes = self._votes(X)
        return votes / votes.sum(axis=1, keepdims=True)
