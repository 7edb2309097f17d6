"""``dann``: Domain-Adversarial Neural Network, a domain classifier behind gradient reversal.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015
(https://proceedings.mlr.press/v37/ganin15.html); Ganin, Ustinova, Ajakan, Germain,
Larochelle, Laviolette, Marchand, Lempitsky, "Domain-Adversarial Training of Neural Networks",
JMLR 17(59), 2016.

The feature extractor G_f (backbone + bottleneck), the label predictor G_y (classifier) and a
domain classifier G_d on the features are trained together on

    E = L_y(source) + L_d(G_d(R_lambda(G_f(x))), d)

where L_d is the binary cross-entropy of the domain label d (0 source, 1 target) over the
source and target batch, and R_lambda the gradient reversal layer: identity forward, gradient
multiplied by -lambda backward. G_d descends L_d; G_f descends L_y and *ascends* lambda L_d,
so the features become indistinguishable between the domains while staying discriminative.
lambda follows the paper's schedule lambda_p = domain_weight (2 / (1 + exp(-gamma p)) - 1),
gamma = 10, with p the training progress, and the learning rate the paper's annealing
mu_p = mu_0 / (1 + alpha p)^beta (alpha = 10, beta = 0.75): the trainer's ``dan`` schedule.
One optimiser, one loss: the trainer's ordinary step.

Deviations from the paper
-------------------------
- G_d's own gradient is that of L_d, not lambda L_d: the paper's update equations scale
  both players by lambda, its gradient-reversal implementation (which this is) only the
  feature extractor's. They differ only in G_d's effective learning rate early in training.
- G_d's architecture is a parameter: the default, two hidden layers of 1024 with ReLU and
  dropout 0.5, is the paper's for its Office experiments; the Amazon-reviews shallow DANN of
  the JMLR paper uses a logistic regressor (``discriminator_hidden: []``) on the 50-unit
  hidden layer (``conf/method/dann.yaml`` documents it; the Amazon table sets it).
- The network around it is tlbench's (backbone, optional bottleneck, linear classifier), and
  the domain classifier reads ``layer`` (``features`` by default: what the classifier reads).
- Labeled target samples, when a task has them, join the source batch for L_y and count as
  target for L_d.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import register_method
from ..deep import DeepMethod, DeepNet, check_layers
from ._adversarial import DomainClassifier, check_hidden, grad_reverse, grl_ramp


def domain_targets(source: Any, target: Any, target_index: int | None) -> torch.Tensor:
    """Domain labels of the step's labeled and unlabeled rows (1 = target).

    Labeled target rows in the source batch (``Batch.domain == target_index``) are target.
    """
    ys = torch.zeros(len(source.features), device=source.features.device)
    if target_index is not None and source.domain is not None:
        ys = (source.domain == target_index).float()
    return torch.cat([ys, torch.ones(len(target.features), device=ys.device)])


@register_method("dann")
class DANN(DeepMethod):
    """DANN: classification loss + a domain classifier trained through gradient reversal.

    Parameters
    ----------
    domain_weight : float, default=1.0
        The final value of lambda (the reversal's scale).
    gamma : float, default=10.0
        Steepness of the schedule lambda_p = domain_weight (2 / (1 + exp(-gamma p)) - 1).
    anneal : bool, default=True
        Follow the schedule; ``False``: lambda = ``domain_weight`` from the first step.
    layer : str, default="features"
        The layer the domain classifier reads.
    discriminator_hidden : list of int, default=(1024, 1024)
        Hidden widths of the domain classifier (empty: logistic regression).
    discriminator_dropout : float, default=0.5
        Dropout after each hidden layer of the domain classifier.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`; ``diagnostics_`` adds the final
        domain-classifier loss and accuracy (``final_domain_loss``, ``final_domain_acc``:
        an accuracy near 0.5 means the domains are confused).
    """

    paper: ClassVar[str] = "Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016"

    def __init__(
        self,
        *,
        domain_weight: float = 1.0,
        gamma: float = 10.0,
        anneal: bool = True,
        layer: str = "features",
        discriminator_hidden: tuple[int, ...] | list[int] = (1024, 1024),
        discriminator_dropout: float = 0.5,
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
        self.domain_weight = domain_weight
        self.gamma = gamma
        self.anneal = anneal
        self.layer = layer
        self.discriminator_hidden = discriminator_hidden
        self.discriminator_dropout = discriminator_dropout

    def _check_params(self, model: DeepNet) -> None:
        if not self.domain_weight >= 0:
            raise ConfigError(f"domain_weight must be >= 0, got {self.domain_weight}")
        if not self.gamma >= 0:
            raise ConfigError(f"gamma must be >= 0, got {self.gamma}")
        if not 0 <= self.discriminator_dropout < 1:
            raise ConfigError(
                f"discriminator_dropout must be in [0, 1), got {self.discriminator_dropout}"
            )
        check_hidden(self.discriminator_hidden, "dann.discriminator_hidden")
        check_layers([self.layer], model, "dann.layer")

    def _wrap_model(self, model: DeepNet, task: Any) -> nn.Module:
        width = layer_width(model, self.layer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed() + 1)  # its own stream: the network's init unchanged
            model.domain_classifier = DomainClassifier(
                width, check_hidden(self.discriminator_hidden, "dann.discriminator_hidden"),
                1, float(self.discriminator_dropout),
            )  # fmt: skip
        self._net = model
        return model

    def transfer_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """L_d through the gradient reversal layer scaled by lambda_p; logs lambda and G_d."""
        lam = float(self.domain_weight)
        if self.anneal:
            lam *= grl_ramp(source.progress, float(self.gamma))
        f = torch.cat([source.layers[self.layer], target.layers[self.layer]])
        logits = self._net.domain_classifier(grad_reverse(f, lam)).squeeze(1)
        d = domain_targets(source, target, self.target_domain_index_)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, d)
        acc = float(((logits.detach() > 0).float() == d).float().mean())
        return loss, {"domain_loss": float(loss.detach()), "domain_acc": acc, "grl_lambda": lam}

    def fit(self, task: Any, trainer: Any | None = None) -> DANN:
        """Train as :meth:`DeepMethod.fit`; record the domain classifier's last loss."""
        super().fit(task, trainer)
        for key in ("domain_loss", "domain_acc"):
            if self.history_.get(key):
                self.diagnostics_[f"final_{key}"] = self.history_[key][-1]
        return self


def layer_width(model: DeepNet, layer: str) -> int:
    """The width of a named layer of a :class:`DeepNet`."""
    if layer == "backbone":
        return int(model.backbone.num_features)
    if layer == "logits":
        return int(model.classifier.out_features)
    return int(model.num_features)  # bottleneck and features: what the classifier reads
