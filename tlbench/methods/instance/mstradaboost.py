"""MsTrAdaBoost: TrAdaBoost with several sources, each round drawing on the best one.

Yao & Doretto, "Boosting for Transfer Learning with Multiple Sources", CVPR 2010, Algorithm 1
(MultiSourceTrAdaBoost). Sources ``S_1 .. S_N`` (``n`` samples in all) and the labeled
target ``T`` carry one weight vector, uniform at start. With ``alpha_S = 1/2 ln(1 +
sqrt(2 ln n / M))``, each round ``t = 1 .. M``:

1. normalise the weights (all sources and the target together);
2. for every source ``k``: train a candidate ``h_k`` on ``S_k ∪ T`` with its weights, and
   measure its weighted error on the target, ``eps_k = sum_T w [h_k(x) != y] / sum_T w``;
3. keep the candidate of smallest ``eps_k``: ``h_t``, ``eps_t``, ``alpha_t = 1/2 ln((1 -
   eps_t) / eps_t)``;
4. every source sample ``w <- w exp(-alpha_S |h_t(x) - y|)`` (a misled source sample fades,
   whichever source it is in), every target sample ``w <- w exp(alpha_t |h_t(x) - y|)``.

With labels in ``{-1, +1}``, ``|h - y|`` is 0 or 2: the source factor ``exp(-2 alpha_S)`` is
TrAdaBoost's ``beta = 1 / (1 + sqrt(2 ln n / M))`` and the target factor ``(1 - eps_t) /
eps_t`` is TrAdaBoost's. The output is ``f(x) = sign(sum_t alpha_t h_t(x))`` over **all**
rounds (TrAdaBoost votes with the second half only). With one source the algorithm is
TrAdaBoost with that vote.

Deviations from the paper
-------------------------
- More than two classes (not in the paper): ``alpha_t = 1/2 (ln((1 - eps_t) / eps_t) +
  ln(K - 1))`` (half the SAMME weight of Zhu et al. 2009; the paper's ``alpha_t`` for
  ``K = 2``), ``|h - y|`` is twice the 0/1 loss and the output the ``alpha``-weighted
  plurality vote; on two classes it is the paper's algorithm.
- The paper requires ``eps_t < 1/2`` (two classes) and says nothing when no candidate meets
  it; tlbench gives such a round ``alpha_t = 0`` (no vote, the target weights stay; the
  sources still fade), and floors ``eps_t`` at ``1e-10``. When no round has a vote, all vote
  equally.
- Ties in ``eps_k`` go to the candidate with the smallest weighted error on its own source
  (the paper does not break ties). They are common: a candidate is trained on the labeled
  target samples it is scored on, and a linear SVM with a few of them fits them all
  (``eps_k = 0`` for every source), where the first source in the list would otherwise win
  every round.
- The base learner receives its part's weights rescaled to mean 1 (the rounds see the same
  relative weights as the paper's; a regularisation constant keeps its unweighted meaning).
- ``predict_proba`` (not in the paper) is each class's share of the vote.
- The paper lets the user choose the initial weights; tlbench starts uniform.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, ClassVar, Self

import numpy as np

from ...registry import register_method
from ...task import TransferTask
from ..base import TransferMethod
from ._boosting import (
    SubsetLearners,
    WeightedVoteMixin,
    base_learner_name,
    boosting_problem,
    check_rounds,
    round_alpha,
    source_rows,
)

__all__ = ["MsTrAdaBoost"]


@register_method("mstradaboost")
class MsTrAdaBoost(WeightedVoteMixin, TransferMethod):
    """MultiSourceTrAdaBoost (Yao & Doretto, CVPR 2010).

    Parameters
    ----------
    n_estimators : int, default=20
        Boosting rounds ``M``.
    estimator : str or estimator, default="linear_svm"
        Base learner: ``linear_svm``, ``logreg``, ``decision_tree`` (depth 3) or any
        scikit-learn classifier whose ``fit`` accepts ``sample_weight``.
    random_state : int, optional
        Seed of the base learners.

    Attributes
    ----------
    estimators_ : list of (source, classifier)
        The ``M`` chosen candidates and the source each was trained with.
    alphas_ : ndarray of shape (M,)
        ``alpha_t``.
    target_errors_ : ndarray of shape (M,)
        ``eps_t`` of the chosen candidate.
    candidate_errors_ : ndarray of shape (M, N)
        ``eps_k`` of every source's candidate in every round.
    chosen_sources_ : list of str
        The source of each round's chosen candidate.
    alpha_source_ : float
        ``alpha_S``.
    classes_ : ndarray
        The class labels.
    diagnostics_ : dict
        How many rounds each source won, each source's final share of the weight, the mean
        target error and the number of rounds without a vote.
    """

    family: ClassVar[str] = "instance"
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
        estimator: Any = "linear_svm",
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Run the boosting rounds over the sources and the labeled target samples."""
        M = check_rounds("mstradaboost", "n_estimators", self.n_estimators)
        self.classifier_ = f"boosted {base_learner_name(self.estimator, self.random_state)}"
        self.check_task(task)
        X, y, n, m, classes = boosting_problem("mstradaboost", task)
        K = len(classes)
        target_rows = np.arange(n, n + m)
        names = [name for name, _ in source_rows(task)]
        source_parts = [rows for _, rows in source_rows(task)]
        parts = [np.concatenate([rows, target_rows]) for rows in source_parts]
        learners = SubsetLearners(self.estimator, self.random_state, X, y)

        alpha_s = 0.5 * math.log(1.0 + math.sqrt(2.0 * math.log(max(n, 2)) / M))
        w = np.full(n + m, 1.0 / (n + m))
        chosen, alphas, errors, all_errors, tied = [], [], [], [], 0
        for _ in range(M):
            w /= w.sum()
            candidates, eps, source_eps = [], [], []
            for k, rows in enumerate(parts):
                fitted = learners.fit(k, rows, w[rows] * len(rows) / w[rows].sum())
                wrong_t = learners.predict_rows(fitted, target_rows) != y[target_rows]
                eps.append(float(np.sum(w[target_rows] * wrong_t) / np.sum(w[target_rows])))
                own = source_parts[k]
                wrong_s = learners.predict_rows(fitted, own) != y[own]
                source_eps.append(float(np.sum(w[own] * wrong_s) / np.sum(w[own])))
                candidates.append(fitted)
            # least target error; ties (common: each candidate fits the few labeled target
            # samples it was trained on) go to the one that fits its own source best
            best = min(range(len(parts)), key=lambda k: (eps[k], source_eps[k]))
            tied += sum(e == eps[best] for e in eps) > 1
            alpha_t = round_alpha(eps[best], K)
            wrong = (learners.predict_rows(candidates[best], np.arange(n + m)) != y).astype(float)
            # |h - y| = 2 [h != y] for labels in {-1, +1}
            w[:n] *= np.exp(-alpha_s * 2.0 * wrong[:n])
            w[n:] *= np.exp(alpha_t * 2.0 * wrong[n:])
            chosen.append(candidates[best])
            alphas.append(alpha_t)
            errors.append(eps[best])
            all_errors.append(eps)
        w /= w.sum()
        self.estimators_ = [(names[k], est) for k, est in chosen]
        self._rounds = chosen
        self._learners = learners.freeze()
        self.alphas_ = np.asarray(alphas)
        self.target_errors_ = np.asarray(errors)
        self.candidate_errors_ = np.asarray(all_errors)
        self.chosen_sources_ = [names[k] for k, _ in chosen]
        self.alpha_source_ = alpha_s
        self.classes_ = classes
        wins = Counter(self.chosen_sources_)
        self.diagnostics_ = {
            "rounds_won": {name: int(wins.get(name, 0)) for name in names},
            "weight_share": {
                **{name: float(w[r].sum()) for name, r in zip(names, source_parts, strict=True)},
                "target": float(w[n:].sum()),
            },
            "alpha_source": alpha_s,
            "mean_target_error": float(self.target_errors_.mean()),
            "rounds_without_vote": int(np.sum(self.alphas_ == 0)),
            "rounds_with_tied_target_error": int(tied),
            "n_target_labeled": m,
            "precomputed_linear_kernel": learners.gram,
        }
        return self
