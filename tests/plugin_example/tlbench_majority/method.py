"""Majority-class baseline, registered from outside tlbench."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from tlbench import register_method
from tlbench.methods.base import TransferMethod


@register_method("majority")
class Majority(TransferMethod):
    """Predict the most frequent source class."""

    family = "baseline"
    supports = frozenset({"tabular"})
    paper = "example plugin"

    def __init__(self, *, tie_break: str = "smallest") -> None:
        self.tie_break = tie_break

    def fit(self, task, trainer=None):
        self.check_task(task)
        counts = np.bincount(task.source.y, minlength=task.num_classes)
        self.class_ = int(np.argmax(counts))
        return self

    def predict(self, X):
        check_is_fitted(self, "class_")
        return np.full(X.shape[0], self.class_)
