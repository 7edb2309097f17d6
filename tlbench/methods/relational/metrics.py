"""Scores of a relational classifier: AUC-ROC, AUC-PR and conditional log-likelihood.

The measures of the relational transfer papers (TAMAR, Mihalkova, Huynh, Mooney AAAI 2007;
TreeBoostler, Azevedo Santos, Paes, Zaverucha, Machine Learning 2020), computed from the
probability of each test atom being true.

Deviations from the papers
--------------------------
- AUC-PR is average precision (the step-wise area of scikit-learn's ``average_precision_score``),
  not the interpolated area of Davis & Goadrich's AUCCalculator used by BoostSRL; the two agree
  closely when there are many positives and differ most on very few.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

#: Probabilities are clipped to [EPS, 1 - EPS] for the log-likelihood (a 0 would give -inf).
EPS = 1e-6


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic; ties count one half)."""
    y = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (tied scores form one step)."""
    y = np.asarray(y_true).astype(float)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=float), kind="mergesort")
    s, y = np.asarray(score, dtype=float)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the end of each block of ties
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0.0, tp]) / tp[-1]
    return float(np.sum(precision * recall_gain))


def relational_metrics(y_true: np.ndarray, p_true: np.ndarray) -> dict[str, float]:
    """AUC-ROC, AUC-PR and mean conditional log-likelihood of the test atoms.

    Parameters
    ----------
    y_true : ndarray of int
        1 for a true test atom, 0 for a false one.
    p_true : ndarray of float
        The predicted probability that each atom is true.

    Returns
    -------
    metrics : dict
        ``auc_roc``, ``auc_pr`` (average precision), ``cll`` (mean of
        ``log p(y_true)``, probabilities clipped to ``[1e-6, 1 - 1e-6]``), ``n_pos``, ``n_neg``.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(p_true, dtype=float)
    if p.shape != y.shape:
        raise ValueError(f"{p.shape[0]} probabilities for {y.shape[0]} test atoms")
    q = np.clip(p, EPS, 1 - EPS)
    return {
        "auc_roc": roc_auc(y, p),
        "auc_pr": average_precision(y, p),
        "cll": float(np.mean(np.where(y == 1, np.log(q), np.log1p(-q)))),
        "n_pos": int(y.sum()),
        "n_neg": int(len(y) - y.sum()),
    }
