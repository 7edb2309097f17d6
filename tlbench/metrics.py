"""Metrics the runner computes on the held-out target test set."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy, in [0, 1].

    Parameters
    ----------
    y_true, y_pred : ndarray of int
        True and predicted labels of the test samples.

    Returns
    -------
    metrics : dict
        ``accuracy``, ``balanced_accuracy`` and ``n_test``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.shape != y_true.shape:
        raise ValueError(f"{y_pred.shape[0]} predictions for {y_true.shape[0]} test samples")
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "n_test": int(len(y_true)),
    }
