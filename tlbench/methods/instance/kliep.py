"""KLIEP: reweight the source by a Gaussian-basis ``p_target / p_source`` of maximum likelihood.

Sugiyama, Nakajima, Kashima, von Bünau, Kawanabe, "Direct Importance Estimation with Model
Selection and Its Application to Covariate Shift Adaptation", NIPS 20 (2007, proceedings 2008);
the journal version Sugiyama, Suzuki, Nakajima, Kashima, von Bünau, Kawanabe, "Direct importance
estimation for covariate shift adaptation", AISM 60 (2008) 699-746. The importance ``w(x) =
sum_l alpha_l exp(-||x - c_l||^2 / (2 sigma^2))``, centres ``c_l`` drawn from the target,
maximises the target log-likelihood of ``w p_source``,

    maximise    mean_t log w(x)
    subject to  mean_s w(x) = 1,   alpha >= 0,

``sigma`` is chosen by likelihood cross-validation over the target samples (no labels), and a
classifier is trained on the source with ``sample_weight = w(x_source)`` (the paper's
importance-weighted learning). The estimator is :class:`tlbench.density_ratio.KLIEPRatio`, the
one ``selection.density_ratio=kliep`` uses.

Deviations from the paper
-------------------------
- The solver: by default sequential quadratic programming stopped on a certified optimality
  gap, not the paper's fixed-step projected gradient ascent (``solver=gradient`` keeps that
  scheme, with the exact projection and an adaptive step); see :mod:`tlbench.density_ratio`,
  which also lists the width grid (multiples of the median distance) and the handling of
  centres and samples the kernel does not reach.
- The paper's experiments use importance-weighted least squares or kernel regression;
  the weighted classifier is ``estimator`` (logistic regression by default, as ``kmm``).
- Labeled target samples, if the task has any, join the training set with weight 1 (the
  :class:`~tlbench.methods.base.ReweightingMethod` convention); the paper has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ...density_ratio import SIGMA_GRID, KLIEPRatio
from ...registry import register_method
from ._ratio import RatioReweighting

__all__ = ["KLIEP"]


@register_method("kliep")
class KLIEP(RatioReweighting):
    """KLIEP (Sugiyama et al., NIPS 2007 / AISM 2008): likelihood importance weights.

    Parameters
    ----------
    n_centers : int, default=100
        Number of Gaussian centres (``b`` in the paper), drawn from the target samples.
    sigma : float, optional
        Kernel width (``sigma``); ``None``: likelihood cross-validation over ``sigma_grid``.
    sigma_grid : sequence of float, default=(0.25, 0.35, ..., 4.0)
        Candidate widths, multiples of the median pairwise distance.
    n_folds : int, default=5
        Folds of the likelihood cross-validation (``R`` in the paper).
    solver : {"sqp", "gradient"}, default="sqp"
        ``sqp``: exact, a few Newton steps; ``gradient``: the paper's projected gradient ascent.
    tol : float, default=1e-6
        Certified optimality gap at which the solver stops.
    max_iter : int, optional
        Solver iteration cap (default 200 for sqp, 20000 for gradient).
    estimator : str or estimator, default="logreg"
        Classifier trained with the weights: ``logreg``, ``linear_svm`` or a scikit-learn
        classifier whose ``fit`` accepts ``sample_weight`` (``knn1`` is refused).
    random_state : int, optional
        Seed of the centres, the folds and the classifier.

    Attributes
    ----------
    weights_ : ndarray of shape (n_source,)
        ``w`` at the source samples (mean 1 by the constraint).
    ratio_ : KLIEPRatio
        The fitted estimator (``sigma_``, ``alpha_``, ``cv_scores_``...).
    diagnostics_ : dict
        ``ess``, ``ess_fraction``, ``max_weight``, ``mean_weight``, ``zero_weights``,
        ``sigma``, ``median_distance``, ``sigma_grid``, ``cv_score`` / ``cv_scores`` (mean
        held-out log w), ``objective`` (``mean_t log w``), ``constraint_residual``
        (``|mean_s w - 1|``), ``gap``, ``iterations``, ``converged``, ``solver``,
        ``n_centers``, ``dropped_centers``, ``seconds``.
    estimator_ : sklearn classifier
        The fitted weighted classifier.
    """

    paper: ClassVar[str] = (
        "Sugiyama, Nakajima, Kashima, von Bünau, Kawanabe. Direct Importance Estimation with "
        "Model Selection and Its Application to Covariate Shift Adaptation. NIPS 2007"
    )
    ratio_class = KLIEPRatio

    def __init__(
        self,
        *,
        n_centers: int = 100,
        sigma: float | None = None,
        sigma_grid: Sequence[float] = SIGMA_GRID,
        n_folds: int = 5,
        solver: str = "sqp",
        tol: float = 1e-6,
        max_iter: int | None = None,
        estimator: Any = "logreg",
        random_state: int | None = None,
    ) -> None:
        self.n_centers = n_centers
        self.sigma = sigma
        self.sigma_grid = sigma_grid
        self.n_folds = n_folds
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.estimator = estimator
        self.random_state = random_state
