"""``mcc``: Minimum Class Confusion, a loss on the target predictions' class correlations.

Jin, Wang, Long, Wang, "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020
(https://arxiv.org/abs/1912.03699).

On a target batch of B samples with logits Z (B x C), the predictions are tempered,
Y = softmax(Z / T), and each sample is weighted by its certainty (uncertainty reweighting),

    W_ii = B (1 + exp(-H(Y_i))) / sum_i' (1 + exp(-H(Y_i'))),   H the entropy,

held fixed (no gradient). The class correlation C = Y^T W Y (C x C) counts how often the
classifier puts mass on two classes j, j' at once. After category normalisation (each column
of C divided by its sum, so that large classes do not dominate), the loss is the off-diagonal
mass per class,

    L_MCC = (1 / C) sum_j sum_{j' != j} C~_jj',

and the network minimises L_C(source) + mu L_MCC(target). Nothing is adversarial and there is
no extra network: one loss, the trainer's ordinary step.

Deviations from the paper
-------------------------
- Category normalisation divides column j' of C by its sum (the released code's
  broadcasting; C is symmetric, so the column and row sums agree, the normalised matrix is
  C~_jj' = C_jj' / sum_j'' C_j''j').
- Defaults T = 2.5 and mu = 1: the values we read in the paper's implementation details; we
  could not check them against its text here.
- The network is tlbench's (backbone, bottleneck, classifier); MCC reads the logits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ...errors import ConfigError
from ...registry import register_method
from ..deep import DeepMethod, DeepNet


def mcc_loss(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """The minimum-class-confusion loss of a batch of logits (``(B, C)``), a scalar >= 0."""
    b, c = logits.shape
    probs = torch.softmax(logits / temperature, dim=1)
    with torch.no_grad():
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
        w = 1.0 + torch.exp(-entropy)
        w = b * w / w.sum()
    corr = (probs * w[:, None]).T @ probs  # C x C, symmetric
    corr = corr / corr.sum(dim=0, keepdim=True)
    return (corr.sum() - torch.trace(corr)) / c


@register_method("mcc")
class MCC(DeepMethod):
    """MCC: source classification + the minimum class confusion of the target predictions.

    Parameters
    ----------
    mcc_weight : float, default=1.0
        mu, the weight of the MCC loss.
    temperature : float, default=2.5
        T, the temperature of the target softmax.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`; ``diagnostics_`` adds the final MCC
        loss (``final_mcc_loss``).
    """

    paper: ClassVar[str] = "Jin, Wang, Long, Wang, ECCV 2020"

    def __init__(
        self,
        *,
        mcc_weight: float = 1.0,
        temperature: float = 2.5,
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
        self.mcc_weight = mcc_weight
        self.temperature = temperature

    def _check_params(self, model: DeepNet) -> None:
        if not self.mcc_weight >= 0:
            raise ConfigError(f"mcc_weight must be >= 0, got {self.mcc_weight}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")

    def transfer_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted MCC loss (mu L_MCC) of the step's unlabeled target logits."""
        loss = mcc_loss(target.logits, float(self.temperature))
        return float(self.mcc_weight) * loss, {"mcc_loss": float(loss.detach())}

    def fit(self, task: Any, trainer: Any | None = None) -> MCC:
        """Train as :meth:`DeepMethod.fit`; record the last MCC loss."""
        super().fit(task, trainer)
        if self.history_.get("mcc_loss"):
            self.diagnostics_["final_mcc_loss"] = self.history_["mcc_loss"][-1]
        return self
