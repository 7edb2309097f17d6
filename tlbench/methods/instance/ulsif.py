"""uLSIF: reweight the source by a least-squares Gaussian-basis ``p_target / p_source``.

Kanamori, Hido, Sugiyama, "A Least-squares Approach to Direct Importance Estimation", JMLR 10
(2009) 1391-1445. The importance ``w(x) = sum_l alpha_l exp(-||x - c_l||^2 / (2 sigma^2))``,
centres ``c_l`` drawn from the target, minimises the squared error to the true ratio,
``J = 1/2 mean_s w^2 - mean_t w`` (+ ``lambda/2 ||alpha||^2``), in closed form:

    alpha = max(0, (H + lambda I)^-1 h),   H = Phi_s^T Phi_s / n_s,   h = mean_t Phi_t;

``sigma`` and ``lambda`` minimise the paper's analytic leave-one-out score (no labels), and a
classifier is trained on the source with ``sample_weight = w(x_source)``. The estimator is
:class:`tlbench.density_ratio.ULSIFRatio`, the one ``selection.density_ratio=ulsif`` uses.

Deviations from the paper
-------------------------
- The candidate grids (widths as multiples of the median pairwise distance, ``lambda`` in
  ``10^-3 ... 10^1``) and the seeded choice of the leave-one-out pairs: see
  :mod:`tlbench.density_ratio`.
- The paper's experiments use importance-weighted least squares or kernel regression;
  the weighted classifier is ``estimator`` (logistic regression by default, as ``kmm``).
- When the clipped ratio is 0 at every source sample the method warns and trains unweighted.
- Labeled target samples, if the task has any, join the training set with weight 1 (the
  :class:`~tlbench.methods.base.ReweightingMethod` convention); the paper has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ...density_ratio import REGULARIZATION_GRID, SIGMA_GRID, ULSIFRatio
from ...registry import register_method
from ._ratio import RatioReweighting

__all__ = ["ULSIF"]


@register_method("ulsif")
class ULSIF(RatioReweighting):
    """uLSIF (Kanamori, Hido, Sugiyama, JMLR 2009): least-squares importance weights.

    Parameters
    ----------
    n_centers : int, default=100
        Number of Gaussian centres (``b`` in the paper), drawn from the target samples.
    sigma : float, optional
        Kernel width (``sigma``); ``None``: leave-one-out over ``sigma_grid``.
    sigma_grid : sequence of float, default=(0.25, 0.35, ..., 4.0)
        Candidate widths, multiples of the median pairwise distance.
    regularization : float, optional
        Ridge parameter (``lambda``); ``None``: leave-one-out over ``regularization_grid``.
    regularization_grid : sequence of float, default=(1e-3, ..., 10)
        Candidate ``lambda`` values.
    estimator : str or estimator, default="logreg"
        Classifier trained with the weights: ``logreg``, ``linear_svm`` or a scikit-learn
        classifier whose ``fit`` accepts ``sample_weight`` (``knn1`` is refused).
    random_state : int, optional
        Seed of the centres, the leave-one-out pairs and the classifier.

    Attributes
    ----------
    weights_ : ndarray of shape (n_source,)
        ``w`` at the source samples.
    ratio_ : ULSIFRatio
        The fitted estimator (``sigma_``, ``regularization_``, ``alpha_``, ``cv_scores_``...).
    diagnostics_ : dict
        ``ess``, ``ess_fraction``, ``max_weight``, ``mean_weight``, ``zero_weights``,
        ``sigma``, ``regularization``, ``median_distance``, the grids, ``cv_score`` /
        ``cv_scores`` (leave-one-out ``J``, lower is better), ``objective`` (``J`` on the
        training samples), ``zero_coefficients``, ``n_centers``, ``seconds``.
    estimator_ : sklearn classifier
        The fitted weighted classifier.
    """

    paper: ClassVar[str] = (
        "Kanamori, Hido, Sugiyama. A Least-squares Approach to Direct Importance Estimation. "
        "JMLR 10, 2009"
    )
    ratio_class = ULSIFRatio

    def __init__(
        self,
        *,
        n_centers: int = 100,
        sigma: float | None = None,
        sigma_grid: Sequence[float] = SIGMA_GRID,
        regularization: float | None = None,
        regularization_grid: Sequence[float] = REGULARIZATION_GRID,
        estimator: Any = "logreg",
        random_state: int | None = None,
    ) -> None:
        self.n_centers = n_centers
        self.sigma = sigma
        self.sigma_grid = sigma_grid
        self.regularization = regularization
        self.regularization_grid = regularization_grid
        self.estimator = estimator
        self.random_state = random_state
