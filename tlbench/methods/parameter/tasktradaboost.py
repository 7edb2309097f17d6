"""TaskTrAdaBoost: boost the target with weak classifiers learned on the sources.

Yao & Doretto, "Boosting for Transfer Learning with Multiple Sources", CVPR 2010, Algorithm 2
(TaskTrAdaBoost), a parameter-transfer method: what crosses from source to target is a set of
classifiers, not samples.

Phase I (per source, no target data): AdaBoost on each source ``S_k`` for ``S`` rounds;
every weak classifier ``h`` whose weight ``alpha = 1/2 ln((1 - eps) / eps)`` on its source
exceeds the threshold ``gamma`` joins the candidate set ``H``.

Phase II (target): AdaBoost on the labeled target samples whose weak learner is a choice from
``H``: with target weights ``w`` (uniform at start), each round ``t = 1 .. M``: normalise
``w``; pick the ``h_t`` in ``H`` of smallest weighted target error ``eps_t``; ``alpha_t = 1/2
ln((1 - eps_t) / eps_t)``; ``w_j <- w_j exp(-alpha_t y_j h_t(x_j))``. The output is
``f(x) = sign(sum_t alpha_t h_t(x))``.

Deviations from the paper
-------------------------
- More than two classes (not in the paper): both phases use ``alpha = 1/2 (ln((1 - eps) /
  eps) + ln(K - 1))`` (half the SAMME weight of Zhu et al. 2009) and ``w <- w exp(2 alpha [h(x)
  != y])`` (for ``K = 2`` the paper's update after normalisation), and the output is the
  ``alpha``-weighted plurality vote; on two classes it is the paper's algorithm.
- The paper does not say whether a chosen ``h_t`` leaves ``H``; tlbench keeps it (AdaBoost
  over a finite set of hypotheses). After its update its weighted error is exactly 1/2 (two
  classes), so it is not chosen again in the next round.
- Stopping: Phase II stops early when the best candidate is no better than chance (``alpha_t
  <= 0``; the paper requires ``eps_t < 1/2``) or classifies every labeled target sample right
  (``eps_t = 0``: AdaBoost's weights would not change, so the same ``h`` would win every
  round; it is kept once, with ``eps_t`` floored at ``1e-10``). Phase I stops a source the
  same way. When no candidate passes ``gamma`` the task is refused (``skipped``: there is
  nothing to transfer).
- ``gamma``: the paper leaves it to the user; the default 0.1 was fixed before any run.
- The base learners receive weights rescaled to mean 1; ``predict_proba`` (not in the paper)
  is each class's share of the vote.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Self

import numpy as np

from ...errors import ConfigError, IncompatibleTaskError
from ...registry import register_method
from ...task import TransferTask
from ..base import TransferMethod
from ..instance._boosting import (
    EPS_FLOOR,
    SubsetLearners,
    WeightedVoteMixin,
    base_learner_name,
    boosting_problem,
    check_rounds,
    round_alpha,
    source_rows,
)

__all__ = ["TaskTrAdaBoost"]


@register_method("tasktradaboost")
class TaskTrAdaBoost(WeightedVoteMixin, TransferMethod):
    """TaskTrAdaBoost (Yao & Doretto, CVPR 2010).

    Parameters
    ----------
    n_estimators : int, default=20
        Phase II rounds ``M`` (fewer when it stops early, see the module docstring).
    source_estimators : int, default=20
        Phase I AdaBoost rounds ``S`` per source.
    gamma : float, default=0.1
        A weak classifier joins the candidates when its source ``alpha`` exceeds it.
    estimator : str or estimator, default="linear_svm"
        Phase I base learner: ``linear_svm``, ``logreg``, ``decision_tree`` (depth 3) or any
        scikit-learn classifier whose ``fit`` accepts ``sample_weight``.
    random_state : int, optional
        Seed of the base learners.

    Attributes
    ----------
    candidates_ : list of (source, alpha)
        Every weak classifier of Phase I that passed ``gamma``, with its source weight.
    estimators_ : list of (source, classifier)
        The classifiers Phase II chose, in order (repeats possible).
    alphas_ : ndarray
        Their target weights ``alpha_t``.
    target_errors_ : ndarray
        Their weighted target errors ``eps_t``.
    classes_ : ndarray
        The class labels.
    diagnostics_ : dict
        Candidates per source, rounds won per source, Phase II rounds run and why it stopped.
    """

    family: ClassVar[str] = "parameter"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular"})
    needs_target_labels: ClassVar[bool] = True
    multi_source: ClassVar[str] = "per_source"
    paper: ClassVar[str] = (
        "Yao, Doretto. Boosting for Transfer Learning with Multiple Sources. CVPR 2010"
    )

    def __init__(
        self,
        *,
        n_estimators: int = 20,
        source_estimators: int = 20,
        gamma: float = 0.1,
        estimator: Any = "linear_svm",
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.source_estimators = source_estimators
        self.gamma = gamma
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Phase I on every source, then Phase II on the labeled target samples."""
        M = check_rounds("tasktradaboost", "n_estimators", self.n_estimators)
        S = check_rounds("tasktradaboost", "source_estimators", self.source_estimators)
        gamma = self.gamma
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or gamma < 0:
            raise ConfigError(f"tasktradaboost: gamma must be a number >= 0, got {gamma!r}")
        base = base_learner_name(self.estimator, self.random_state)
        self.classifier_ = f"boosted {base} (source classifiers)"
        self.check_task(task)
        X, y, n, m, classes = boosting_problem("tasktradaboost", task)
        K = len(classes)
        learners = SubsetLearners(self.estimator, self.random_state, X, y)
        target_rows = np.arange(n, n + m)

        # Phase I: AdaBoost on each source alone; keep the weak classifiers with alpha > gamma
        pool, pool_alpha, pool_pred = [], [], []
        for name, rows in source_rows(task):
            w = np.full(len(rows), 1.0 / len(rows))
            for _ in range(S):
                w /= w.sum()
                fitted = learners.fit(name, rows, w * len(rows))
                wrong = learners.predict_rows(fitted, rows) != y[rows]
                eps = float(np.sum(w * wrong))
                alpha = round_alpha(eps, K)
                if alpha > gamma:
                    pool.append(fitted)
                    pool_alpha.append((name, alpha))
                    pool_pred.append(learners.predict_rows(fitted, target_rows))
                if alpha <= 0 or eps <= EPS_FLOOR:
                    break  # no better than chance, or perfect: AdaBoost's weights stay
                w = w * np.exp(2.0 * alpha * wrong)
        if not pool:
            raise IncompatibleTaskError(
                f"tasktradaboost: no source weak classifier has alpha > gamma={gamma}; there "
                "is nothing to transfer (lower method.gamma)"
            )

        # Phase II: AdaBoost on the labeled target, the weak learner chosen from the pool
        wrong_t = np.asarray(pool_pred) != y[target_rows][None, :]
        w = np.full(m, 1.0 / m)
        chosen, alphas, errors = [], [], []
        stop = "n_estimators rounds"
        for _ in range(M):
            w /= w.sum()
            eps = wrong_t @ w
            best = int(np.argmin(eps))
            alpha = round_alpha(eps[best], K)
            if alpha <= 0:
                stop = "no candidate better than chance"
                break
            chosen.append(best)
            alphas.append(alpha)
            errors.append(float(eps[best]))
            if eps[best] <= EPS_FLOOR:
                stop = "a candidate classifies every labeled target sample right"
                break
            w = w * np.exp(2.0 * alpha * wrong_t[best])
        if not chosen:
            raise IncompatibleTaskError(
                "tasktradaboost: no source weak classifier does better than chance on the "
                "labeled target samples; there is nothing to transfer"
            )
        self.candidates_ = pool_alpha
        self._rounds = [pool[i] for i in chosen]
        self._learners = learners.freeze()
        self.estimators_ = [(pool_alpha[i][0], pool[i][1]) for i in chosen]
        self.alphas_ = np.asarray(alphas)
        self.target_errors_ = np.asarray(errors)
        self.classes_ = classes
        names = list(task.source_names)
        per_source = Counter(s for s, _ in pool_alpha)
        wins = Counter(pool_alpha[i][0] for i in chosen)
        self.diagnostics_ = {
            "candidates": {s: int(per_source.get(s, 0)) for s in names},
            "rounds_won": {s: int(wins.get(s, 0)) for s in names},
            "rounds": len(chosen),
            "stopped": stop,
            "distinct_classifiers": len(set(chosen)),
            "mean_target_error": float(np.mean(errors)),
            "n_target_labeled": m,
            "precomputed_linear_kernel": learners.gram,
        }
        return self
