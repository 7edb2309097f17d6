"""``dan``: Deep Adaptation Network, multi-kernel MMD on several task-specific layers.

Long, Cao, Wang, Jordan. "Learning Transferable Features with Deep Adaptation Networks."
ICML 2015. https://proceedings.mlr.press/v37/long15.html

The loss is L = L_C(source) + lambda_p * sum_l MK-MMD²(source_l, target_l) over the adapted
layers l (``layers``). Each MK-MMD uses a family of Gaussian kernels whose bandwidths are
multiples of the median pairwise distance of the batch (the paper: gamma between 2^-8 and 2^8
times the median's, multiplicative step 2^1/2, i.e. 33 kernels), with the paper's linear-time
unbiased estimator by default (``estimator="linear"``; ``"unbiased"`` / ``"biased"`` are the
quadratic ones). The transfer weight is annealed, lambda_p = mmd_weight * (2 / (1 + exp(-10 p))
- 1) with p the training progress, and the learning rate follows the trainer's ``dan``
schedule lr_p = lr0 (1 + 10 p)^-0.75.

Kernel weights beta (``kernel_weights``): ``"uniform"`` (the default) gives every kernel
1/U; ``"learned"`` is the paper's section 3 (learning beta). For each adapted layer, beta
maximises the MK-MMD relative to the standard deviation of its linear-time estimate (the
test power), which reduces to the quadratic program

    min_beta beta^T (Q + eps I) beta   s.t.   d^T beta = 1,  beta >= 0,   eps = 1e-3,

with d_u the linear-time MMD² of kernel u and Q_uv = mean_j gΔ_u(z̄_j) gΔ_v(z̄_j) over pairs
z̄_j of consecutive quad-tuples (:func:`tlbench.kernels.mk_mmd_test_statistics`), solved
exactly (:func:`tlbench.kernels.optimal_kernel_weights`) on the detached features of the
current mini-batch; the network step then uses that beta, held fixed: the paper's alternation
of a beta step (Theta fixed) and an SGD step (beta fixed), once per mini-batch. A list gives
fixed weights.

Deviations from the paper:

- Learned beta: the paper states the program on the layer's features of the whole domains
  and alternates it with SGD without saying how often; here it is solved at every step on
  the current mini-batch (or on the statistics of the last ``beta_window`` mini-batches,
  each computed by the network as it was at its step), so beta is a noisy, per-batch
  estimate.
  The solution (d^T beta = 1) is rescaled to sum to 1, back into the paper's family
  K = {sum_u beta_u k_u : sum_u beta_u = 1, beta >= 0} (the power ratio it maximises does
  not depend on the scale). When no kernel has a positive d_u the program is infeasible and
  the previous beta (at the start: uniform) is kept; ``diagnostics_["beta_infeasible"]``
  counts these steps. The program is solved per process under DDP (each rank on its own
  batch). The last beta and the window are not in the trainer's checkpoint: a resumed run
  equals an uninterrupted one only with ``beta_window=1`` and a feasible program at the
  first step after the resume (else that step uses uniform weights or a shorter window).
- Default beta: uniform, not the learned one: on MNIST→USPS with lenet (3 seeds,
  ``experiments/deep/README.md``) the learned weights were not better (M→U 76.6 ± 1.3 vs
  76.9 ± 1.6, U→M 61.1 ± 2.5 vs 61.9 ± 2.7).
- Layers: the paper adapts AlexNet's fc6-fc8 and freezes conv1-conv3; here the default is the
  bottleneck (``features``) and the logits (``logits``), i.e. fc7-fc8 of a backbone +
  bottleneck + classifier network; any of ``backbone``, ``bottleneck``, ``features``,
  ``logits`` can be listed.
- The annealing of the transfer weight is the ramp of Ganin & Lempitsky (ICML 2015), which
  DAN-style reference code uses; the paper selects a constant lambda. ``anneal=false`` keeps
  it constant.
- The bandwidth base is the median squared distance of the pooled source + target batch,
  re-estimated at every step (the paper: the median heuristic, without saying on what).
- How others differ: TLlib (thuml/Transfer-Learning-Library, ``tllib/alignment/dan.py``) uses
  5 Gaussian kernels (bandwidth multipliers 2^-3..2^1 of the batch mean distance), equal kernel
  weights, one 256-d bottleneck layer, the linear-time estimator by default; skada
  (``skada/deep/_divergence.py``) uses 33 median-scaled Gaussian kernels on one layer picked by
  name, with the quadratic biased estimate. Neither learns beta.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import torch

from ...errors import ConfigError, DataError
from ...kernels import mk_mmd_test_statistics, optimal_kernel_weights, sq_dists
from ...registry import register_method
from ..deep import DeepMethod, DeepNet, check_layers

ESTIMATORS = ("linear", "unbiased", "biased")


def _check_estimator(estimator: str, what: str) -> None:
    if estimator not in ESTIMATORS:
        choices = ", ".join(ESTIMATORS)
        raise ConfigError(f"unknown {what} {estimator!r}; choose one of {choices}")


#: The paper's family: squared-bandwidth multipliers 2^(k/2), k = -16..16 (33 kernels).
PAPER_MULTIPLIERS: tuple[float, ...] = tuple(2.0 ** (k / 2) for k in range(-16, 17))

#: ``kernel_weights`` values that are not an explicit list.
KERNEL_WEIGHT_MODES: tuple[str, ...] = ("uniform", "learned")


def per_kernel_mmd2(
    X: torch.Tensor,
    Y: torch.Tensor,
    multipliers: tuple[float, ...] | list[float],
    estimator: str,
    linear_terms: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The MMD² estimate of every Gaussian kernel of the family, from one distance matrix.

    The squared distances of the pooled samples are computed once; the bandwidths are
    gamma_u = 1 / (multiplier_u * median), the median being that of the pooled, detached
    squared distances (as :func:`tlbench.kernels.mk_mmd2`), and all kernels are one
    broadcast ``exp``.

    Parameters
    ----------
    X, Y : Tensor of shape (n, d), (m, d)
        Source and target batch.
    multipliers : sequence of float
        Squared bandwidths relative to the median squared distance.
    estimator : {"linear", "unbiased", "biased"}
        The MMD² estimator (see :mod:`tlbench.kernels`).
    linear_terms : bool, default=False
        Also return the linear-time terms ``h[u, i] = g_{k_u}(z_i)`` over the quad-tuples
        ``z_i`` (what DAN's learned kernel weights are computed from), for any estimator.

    Returns
    -------
    mmd2 : Tensor of shape (U,)
        Per-kernel estimates (differentiable).
    h : Tensor of shape (U, p) or None
        The linear-time terms (differentiable), when ``estimator="linear"`` or
        ``linear_terms``.
    """
    _check_estimator(estimator, "MMD estimator")
    mult = torch.as_tensor(list(multipliers), dtype=X.dtype, device=X.device)
    if len(mult) == 0 or bool((mult <= 0).any()):
        raise ConfigError(f"bandwidth_multipliers must be > 0, got {list(multipliers)}")
    n, m = len(X), len(Y)
    Z = torch.cat([X, Y])
    D = sq_dists(Z, Z)
    iu = torch.triu_indices(n + m, n + m, offset=1, device=Z.device)
    med = D.detach()[iu[0], iu[1]].median()
    med = torch.where(med > 0, med, torch.ones_like(med))  # all samples equal: gamma = 1
    gammas = 1.0 / (mult * med)
    h = None
    if estimator == "linear" or linear_terms:
        # Gretton et al. 2012, Lemma 14, over disjoint pairs (x1, x2), (y1, y2)
        p = min(n, m) // 2
        if p < 1:
            raise DataError("the linear-time MMD estimate needs at least 2 samples per domain")
        i1, i2 = (
            torch.arange(0, 2 * p, 2, device=Z.device),
            torch.arange(1, 2 * p, 2, device=Z.device),
        )
        d = torch.stack([D[i1, i2], D[n + i1, n + i2], D[i1, n + i2], D[i2, n + i1]])  # (4, p)
        k = torch.exp(-gammas[:, None, None] * d[None])  # (U, 4, p)
        h = k[:, 0] + k[:, 1] - k[:, 2] - k[:, 3]
        if estimator == "linear":
            return h.mean(1), h
    K = torch.exp(-gammas[:, None, None] * D[None])  # (U, n + m, n + m)
    Kxx, Kyy, Kxy = K[:, :n, :n], K[:, n:, n:], K[:, :n, n:]
    if estimator == "biased":
        return Kxx.mean((1, 2)) + Kyy.mean((1, 2)) - 2.0 * Kxy.mean((1, 2)), h
    if n < 2 or m < 2:
        raise DataError("the unbiased MMD estimate needs at least 2 samples per domain")
    est = (
        (Kxx.sum((1, 2)) - Kxx.diagonal(dim1=1, dim2=2).sum(1)) / (n * (n - 1))
        + (Kyy.sum((1, 2)) - Kyy.diagonal(dim1=1, dim2=2).sum(1)) / (m * (m - 1))
        - 2.0 * Kxy.mean((1, 2))
    )
    return est, h


def _check_weights(weights: Any, n_kernels: int, like: torch.Tensor) -> torch.Tensor:
    if weights is None:
        return like.new_full((n_kernels,), 1.0 / n_kernels)
    w = torch.as_tensor(np.asarray(list(weights), dtype=np.float64), dtype=like.dtype,
                        device=like.device).ravel()  # fmt: skip
    if len(w) != n_kernels or bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ConfigError(f"need {n_kernels} non-negative kernel weights, got {list(weights)}")
    return w


def mk_mmd2_pooled(
    X: torch.Tensor,
    Y: torch.Tensor,
    multipliers: tuple[float, ...] | list[float],
    weights: Any,
    estimator: str,
) -> torch.Tensor:
    """MK-MMD² with every kernel evaluated from one distance computation.

    The same quantity as :func:`tlbench.kernels.mk_mmd2` (median of the pooled, detached
    squared distances; gamma_u = 1 / (multiplier_u * median)), but the squared distances are
    computed once and all kernels are one broadcast ``exp`` (:func:`per_kernel_mmd2`): with
    the paper's 33 kernels this is an order of magnitude faster per step than one pass per
    kernel. ``weights`` (beta; ``None``: equal) weigh the per-kernel estimates.
    """
    est, _ = per_kernel_mmd2(X, Y, multipliers, estimator)
    return (_check_weights(weights, len(est), est) * est).sum()


@register_method("dan", paper="Long et al., ICML 2015")
class DAN(DeepMethod):
    """Deep Adaptation Network: classification loss + annealed MK-MMD² on several layers.

    Parameters
    ----------
    mmd_weight : float, default=1.0
        lambda in Long et al. (the final value of the annealed weight).
    layers : list of str, default=("features", "logits")
        The adapted layers (their MK-MMD² terms are summed).
    bandwidth_multipliers : list of float, optional
        Squared bandwidths relative to the median squared distance; default: the paper's 33.
    kernel_weights : {"uniform", "learned"} or list of float, default="uniform"
        beta: equal weights 1/U (``"uniform"`` or ``None``), the paper's weights learned per
        layer and per step by the paper's quadratic program (``"learned"``, see the
        module docstring), or fixed weights (a list, one per kernel).
    beta_eps : float, default=1e-3
        The ridge epsilon of the kernel-weight program (1e-3 in the paper).
    beta_window : int, default=1
        ``kernel_weights="learned"``: the program is solved on the linear-time statistics of
        the last ``beta_window`` mini-batches (1: the current one only).
    estimator : {"linear", "unbiased", "biased"}, default="linear"
        The paper's linear-time unbiased estimate, or a quadratic one.
    anneal : bool, default=True
        Ramp the transfer weight with 2 / (1 + exp(-10 p)) - 1.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`; with learned weights, ``diagnostics_``
        holds the last beta of each layer (``kernel_weights``) and how often the program was
        infeasible (``beta_infeasible``).
    kernel_weights_ : dict of str to list of float
        The kernel weights of each layer at the end of training.

    References
    ----------
    .. [1] Long, Cao, Wang, Jordan, "Learning Transferable Features with Deep Adaptation
       Networks", ICML 2015.
    .. [2] Gretton, Sriperumbudur, Sejdinovic, Strathmann, Balakrishnan, Pontil, Fukumizu,
       "Optimal kernel choice for large-scale two-sample tests", NIPS 2012.
    """

    paper: ClassVar[str] = "Long et al., ICML 2015"

    def __init__(
        self,
        *,
        mmd_weight: float = 1.0,
        layers: tuple[str, ...] | list[str] = ("features", "logits"),
        bandwidth_multipliers: list[float] | None = None,
        kernel_weights: str | list[float] | None = "uniform",
        beta_eps: float = 1e-3,
        beta_window: int = 1,
        estimator: str = "linear",
        anneal: bool = True,
        backbone: str = "auto",
        pretrained: bool = False,
        weights_path: str | None = None,
        bottleneck_dim: int = 256,
        dropout: float = 0.0,
        backbone_lr_mult: float = 1.0,
        hidden: tuple[int, ...] | list[int] = (256,),
        input_shape: tuple[int, ...] | list[int] | None = None,
        image_size: int | str | None = None,
        train_blocks: int | None = None,
        cache_dir: str | None = None,
        weight_init: str = "default",
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            backbone=backbone, pretrained=pretrained, weights_path=weights_path,
            bottleneck_dim=bottleneck_dim, dropout=dropout, backbone_lr_mult=backbone_lr_mult,
            hidden=hidden, input_shape=input_shape, image_size=image_size,
            train_blocks=train_blocks, cache_dir=cache_dir, weight_init=weight_init,
            random_state=random_state,
        )  # fmt: skip
        self.mmd_weight = mmd_weight
        self.layers = layers
        self.bandwidth_multipliers = bandwidth_multipliers
        self.kernel_weights = kernel_weights
        self.beta_eps = beta_eps
        self.beta_window = beta_window
        self.estimator = estimator
        self.anneal = anneal

    # ----------------------------------------------------------------- helpers

    def _mode(self) -> str:
        kw = self.kernel_weights
        if kw is None:
            return "uniform"
        if isinstance(kw, str):
            if kw not in KERNEL_WEIGHT_MODES:
                raise ConfigError(
                    f"kernel_weights must be one of {', '.join(KERNEL_WEIGHT_MODES)} or a list "
                    f"of weights, got {kw!r}"
                )
            return kw
        return "fixed"

    def _multipliers(self) -> tuple[float, ...] | list[float]:
        return self.bandwidth_multipliers or PAPER_MULTIPLIERS

    def _check_params(self, model: DeepNet) -> None:
        if self.mmd_weight < 0:
            raise ConfigError(f"mmd_weight must be >= 0, got {self.mmd_weight}")
        check_layers(list(self.layers), model, "dan.layers")
        mode = self._mode()
        n_kernels = len(self._multipliers())
        if mode == "fixed":
            _check_weights(self.kernel_weights, n_kernels, torch.zeros(1))
        if mode == "learned":
            if not self.beta_eps > 0:
                raise ConfigError(f"beta_eps must be > 0, got {self.beta_eps}")
            if int(self.beta_window) != self.beta_window or self.beta_window < 1:
                raise ConfigError(f"beta_window must be an integer >= 1, got {self.beta_window}")

    def _learn_beta(self, name: str, h: torch.Tensor) -> np.ndarray:
        """Solve the kernel-weight program on the recent statistics of layer ``name``."""
        state = self.__dict__.setdefault("_beta_state", {})
        layer = state.setdefault(name, {"window": [], "beta": None, "infeasible": 0})
        layer["window"].append(h.detach().to("cpu", torch.float64).numpy())
        del layer["window"][: -int(self.beta_window)]
        # quad-tuples of each mini-batch, then consecutive ones paired for Q (within a batch)
        stats = [mk_mmd_test_statistics(w) for w in layer["window"]]
        sizes = np.array([w.shape[1] for w in layer["window"]], dtype=np.float64)
        d = sum(s[0] * n for s, n in zip(stats, sizes, strict=True)) / sizes.sum()
        Q = sum(s[1] * n for s, n in zip(stats, sizes, strict=True)) / sizes.sum()
        beta = optimal_kernel_weights(d, Q, eps=float(self.beta_eps))
        if beta is None:  # no kernel sees a positive discrepancy: keep the last weights
            layer["infeasible"] += 1
            if layer["beta"] is None:
                layer["beta"] = np.full(len(d), 1.0 / len(d))
        else:
            layer["beta"] = beta / beta.sum()  # back onto the simplex of the paper's family K
        return layer["beta"]

    # ----------------------------------------------------------------- loss

    def transfer_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Return lambda_p * sum over layers of MK-MMD²(source, target).

        With ``kernel_weights="learned"``, beta of each layer is first re-solved on the
        current (detached) features, then held fixed in the loss: one alternation of the
        paper's two steps per mini-batch.
        """
        mult = self._multipliers()
        mode = self._mode()
        total = 0.0
        logs: dict[str, float] = {}
        for name in self.layers:
            est, h = per_kernel_mmd2(source.layers[name], target.layers[name], mult,
                                     self.estimator, linear_terms=mode == "learned")  # fmt: skip
            if mode == "learned":
                beta = self._learn_beta(name, h)
                w = est.new_tensor(beta)
                # where the weight sits on the bandwidth scale: sum_u beta_u log2(multiplier_u)
                logs[f"beta_log2_bandwidth_{name}"] = float(np.dot(beta, np.log2(mult)))
            else:
                w = _check_weights(None if mode == "uniform" else self.kernel_weights,
                                   len(est), est)  # fmt: skip
            total = total + (w * est).sum()
        ramp = 2.0 / (1.0 + math.exp(-10.0 * source.progress)) - 1.0 if self.anneal else 1.0
        logs["mk_mmd2"] = float(total.detach())
        return self.mmd_weight * ramp * total, logs

    def fit(self, task: Any, trainer: Any | None = None) -> Self:
        """Train as :meth:`DeepMethod.fit`; record the final kernel weights."""
        _check_estimator(self.estimator, "method.estimator")  # before training, not at step 1
        self._beta_state: dict[str, dict[str, Any]] = {}
        super().fit(task, trainer)
        if self._mode() == "learned":
            self.kernel_weights_ = {
                name: [float(b) for b in s["beta"]] for name, s in self._beta_state.items()
            }
            self.diagnostics_["kernel_weights"] = self.kernel_weights_
            self.diagnostics_["beta_infeasible"] = {
                name: int(s["infeasible"]) for name, s in self._beta_state.items()
            }
        else:
            n = len(self._multipliers())
            beta = [1.0 / n] * n if self._mode() == "uniform" else list(self.kernel_weights)
            self.kernel_weights_ = {name: [float(b) for b in beta] for name in self.layers}
        return self
