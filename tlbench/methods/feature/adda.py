"""``adda``: Adversarial Discriminative Domain Adaptation, a target encoder trained as a GAN.

Tzeng, Hoffman, Saenko, Darrell, "Adversarial Discriminative Domain Adaptation", CVPR 2017
(https://arxiv.org/abs/1702.05464).

Three stages, all in one trainer run (:class:`tlbench.trainer.Update` phases):

1. *Pre-training*: a source encoder M_s and classifier C are trained on the labeled source
   with the classification loss (steps ``0 .. pretrain_steps``).
2. *Adversarial adaptation*: the target encoder M_t starts as a copy of M_s (untied weights);
   a discriminator D (two hidden layers of 500, ReLU: the paper's) learns to tell M_s(x_s)
   (label 1) from M_t(x_t) (label 0),

       L_adv_D = - E_s log D(M_s(x_s)) - E_t log(1 - D(M_t(x_t))),

   while M_t is trained with the inverted-label GAN loss
   L_adv_M = - E_t log D(M_t(x_t)) (the target features labeled as source). M_s and C are
   frozen: no update of this phase holds their parameters. Both players use Adam
   (``adversarial_lr`` 2e-4, betas (0.5, 0.999)), the values of the authors' released
   scripts.
3. *Testing*: target samples are classified by C(M_t(x)).

``layer`` chooses what the encoders are: ``logits`` (default) makes the whole network the
mapping and D reads its logits, as the authors' released code does (``tools/train_adda.py``
of erictzeng/adda: the target scope is the whole LeNet, the adversary reads its output);
``features`` makes M = backbone + bottleneck, D reads the features C classifies, and C stays
the source classifier (the paper's figure 3).

Deviations from the paper
-------------------------
- The two players' gradients are taken at the same point and both step every iteration (one
  trainer step, two updates); GAN training schedules with k discriminator steps are not
  offered.
- During the adversarial phase the trainer still runs M_s on the step's target batch (its
  shared forward; unused by the losses): a cost, not a change of the result for networks
  without batch normalisation. With batch normalisation, the pre-training forward also sees
  the target batch, as in ``mmd``/``dan`` (``source_only_deep.forward_target``).
- Model selection: held-out *source* samples (``selection=source_val``, ``iwv``, ``dev``)
  score M_s, the source network (``predict_source``): they cannot score M_t, which never
  sees a labeled sample. ``entropy`` scores M_t on the target. ``trainer.selection`` must be
  ``last``.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError
from ...registry import register_method
from ...trainer import Update
from ..deep import DeepMethod, DeepNet, check_fitted
from ._adversarial import DomainClassifier, check_betas, check_hidden, resolve_steps
from .dann import layer_width

LAYERS = ("features", "logits")


class ADDANet(nn.Module):
    """The source network, the target network and the discriminator, trained as one module.

    ``encoder`` says which network ``forward_layers`` runs: ``"source"`` while training (the
    trainer's forward, pre-training and selection) and for source samples, ``"target"`` to
    classify target samples once training ends.
    """

    def __init__(self, source: DeepNet, discriminator: nn.Module) -> None:
        super().__init__()
        self.source = source
        self.target = copy.deepcopy(source)
        self.discriminator = discriminator
        self.encoder = "source"

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The networks' layer names."""
        return self.source.layer_names

    def _net(self) -> DeepNet:
        return self.source if self.encoder == "source" else self.target

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every named output of the current encoder's network."""
        return self._net().forward_layers(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input from the current encoder."""
        return self._net().forward_features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self._net().forward_head(features)


@register_method("adda")
class ADDA(DeepMethod):
    """ADDA: source pre-training, then a target encoder trained against a discriminator.

    Parameters
    ----------
    pretrain_steps : int or float, default=0.5
        Steps of source pre-training: an integer, or a fraction of ``trainer.max_steps``; the
        adversarial phase runs for the rest.
    adversarial_lr : float, default=2e-4
        Adam's learning rate for the target encoder and the discriminator.
    adversarial_betas : list of float, default=(0.5, 0.999)
        Adam's betas of the adversarial phase.
    layer : {"logits", "features"}, default="logits"
        What the discriminator reads (and so what the target encoder is; see the module).
    discriminator_hidden : list of int, default=(500, 500)
        Hidden widths of the discriminator.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    pretrain_steps_ : int
        The resolved number of pre-training steps.
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`; ``model_`` is the :class:`ADDANet`;
        ``diagnostics_`` adds the discriminator's final loss and accuracy.
    """

    paper: ClassVar[str] = "Tzeng, Hoffman, Saenko, Darrell, CVPR 2017"

    def __init__(
        self,
        *,
        pretrain_steps: int | float = 0.5,
        adversarial_lr: float = 2e-4,
        adversarial_betas: tuple[float, float] | list[float] = (0.5, 0.999),
        layer: str = "logits",
        discriminator_hidden: tuple[int, ...] | list[int] = (500, 500),
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
        self.pretrain_steps = pretrain_steps
        self.adversarial_lr = adversarial_lr
        self.adversarial_betas = adversarial_betas
        self.layer = layer
        self.discriminator_hidden = discriminator_hidden

    def _check_params(self, model: DeepNet) -> None:
        if self.layer not in LAYERS:
            raise ConfigError(f"adda.layer must be one of {', '.join(LAYERS)}, got {self.layer!r}")
        if not self.adversarial_lr > 0:
            raise ConfigError(f"adversarial_lr must be > 0, got {self.adversarial_lr}")
        check_betas(self.adversarial_betas, "adversarial_betas")
        check_hidden(self.discriminator_hidden, "adda.discriminator_hidden")

    def _wrap_model(self, model: DeepNet, task: Any) -> nn.Module:
        hidden = check_hidden(self.discriminator_hidden, "adda.discriminator_hidden")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed() + 1)
            disc = DomainClassifier(layer_width(model, self.layer), hidden, 1)
        self._net = ADDANet(model, disc)
        self._cache: dict[str, Any] = {}
        return self._net

    def updates(self, model: nn.Module, groups: list[dict[str, Any]]) -> list[Update]:
        """Pre-training of the source network; then the target encoder and discriminator."""
        trainer = self.trainer_
        if trainer.selection != "last":
            raise ConfigError(
                "adda trains its target encoder without labels: trainer.selection must be "
                "last (choose with the runner's selection=entropy|source_val|iwv|dev)"
            )
        n = resolve_steps(self.pretrain_steps, int(trainer.max_steps), "adda.pretrain_steps")
        self.pretrain_steps_ = n
        net = self._net
        encoder = [
            p
            for name, p in net.target.named_parameters()
            if self.layer == "logits" or not name.startswith("classifier.")
        ]
        adam = {"optimizer": "adam", "lr": float(self.adversarial_lr),
                "betas": check_betas(self.adversarial_betas, "adversarial_betas"),
                "weight_decay": 0.0, "schedule": "constant", "start": n}  # fmt: skip
        return [
            Update("source", groups, None, stop=n),
            Update("target_encoder", encoder, self._mapping_loss, classification=False,
                   on_start=self._init_target, **adam),
            Update("discriminator", list(net.discriminator.parameters()),
                   self._discriminator_loss, classification=False, **adam),
        ]  # fmt: skip

    def _init_target(self) -> None:
        """M_t starts as the pre-trained M_s (untied weights)."""
        self._net.target.load_state_dict(self._net.source.state_dict())

    def _target_features(self, target: Any) -> torch.Tensor:
        """M_t of the step's target batch, computed once per step for both players."""
        if self._cache.get("step") != target.step:
            self._cache = {"step": target.step,
                           "f": self._net.target.forward_layers(target.x)[self.layer]}  # fmt: skip
        return self._cache["f"]

    def _mapping_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The inverted-label GAN loss: the target features are labeled as source (1)."""
        logits = self._net.discriminator(self._target_features(target)).squeeze(1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return loss, {}

    def _discriminator_loss(
        self, source: Any, target: Any
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Source features (from the frozen M_s) labeled 1, target features labeled 0."""
        fs = source.layers[self.layer].detach()
        ft = self._target_features(target).detach()
        logits = self._net.discriminator(torch.cat([fs, ft])).squeeze(1)
        d = torch.cat([torch.ones(len(fs)), torch.zeros(len(ft))]).to(logits.device)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, d)
        acc = float(((logits.detach() > 0).float() == d).float().mean())
        return loss, {"discriminator_acc": acc}

    def _after_fit(self, model: nn.Module) -> None:
        self._cache = {}
        self._net.encoder = "target"

    def fit(self, task: Any, trainer: Any | None = None) -> ADDA:
        """Train as :meth:`DeepMethod.fit`; record the players' final losses."""
        super().fit(task, trainer)
        for key in ("target_encoder_loss", "discriminator_loss", "discriminator_acc"):
            if self.history_.get(key):
                self.diagnostics_[f"final_{key}"] = self.history_[key][-1]
        self.diagnostics_["pretrain_steps"] = self.pretrain_steps_
        return self

    def predict_source(self, X: Any) -> np.ndarray:
        """Classify *source* samples with the source network C(M_s(x))."""
        check_fitted(self, "model_")
        self.model_.encoder = "source"
        try:
            return self.predict(X)
        finally:
            self.model_.encoder = "target"
