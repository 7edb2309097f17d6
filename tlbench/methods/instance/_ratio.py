"""What the density-ratio reweighting methods (``kliep``, ``ulsif``) share.

A :class:`RatioReweighting` method estimates ``w(x) = p_target(x) / p_source(x)`` with an
estimator of :mod:`tlbench.density_ratio` on the source and target training samples, and trains
the weighted classifier with ``sample_weight = w(x_source)``. The estimators are the ones the
``iwv`` / ``dev`` selection protocols use (``selection.density_ratio``): one code path.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar, Self

import numpy as np

from ...density_ratio import RatioEstimator, weight_summary
from ...task import TransferTask
from ..base import ReweightingMethod


class RatioReweighting(ReweightingMethod):
    """Reweighting by a :mod:`tlbench.density_ratio` estimator (subclasses name it).

    The constructor arguments that the estimator class also takes are passed on to it; the
    rest (``estimator``) configure the weighted classifier.

    Attributes
    ----------
    weights_ : ndarray of shape (n_source,)
        ``w`` at the source samples.
    ratio_ : RatioEstimator
        The fitted density-ratio estimator.
    diagnostics_ : dict
        Weight summary (``ess``, ``ess_fraction``, ``max_weight``, ``mean_weight``,
        ``zero_weights``), the estimator's :meth:`~tlbench.density_ratio.RatioEstimator.summary`
        (chosen width, cross-validation scores, objective...) and ``seconds`` (estimation).
    estimator_ : sklearn classifier
        The fitted weighted classifier.
    """

    ratio_class: ClassVar[type[RatioEstimator]]

    def ratio_estimator(self) -> RatioEstimator:
        """The unfitted density-ratio estimator with this method's hyperparameters."""
        names = self.ratio_class._get_param_names()
        return self.ratio_class(**{k: getattr(self, k) for k in names})

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Check the classifier, estimate the ratio, fit the weighted classifier."""
        self.check_weighted_estimator()
        return super().fit(task, trainer)

    def compute_weights(self, task: TransferTask) -> np.ndarray:
        """``w(x)`` at the source samples, estimated from the source and target samples."""
        start = time.perf_counter()
        self.ratio_ = self.ratio_estimator().fit(task.source.X, task.target.X)
        weights = np.asarray(self.ratio_(task.source.X), dtype=np.float64)
        seconds = time.perf_counter() - start
        if not weights.sum() > 0:
            # every source sample outside the basis' reach: no weighting is better than none
            warnings.warn(
                f"{self.name}: the estimated ratio is 0 at every source sample; using uniform "
                "weights",
                RuntimeWarning,
                stacklevel=3,
            )
            weights = np.ones(len(weights))
        summary = {k: v for k, v in self.ratio_.summary().items() if k != "density_ratio"}
        self.diagnostics_ = {**weight_summary(weights), **summary, "seconds": seconds}
        return weights
