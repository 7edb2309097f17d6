"""``cdan``: Conditional Domain Adversarial Network, a domain classifier on features x predictions.

Long, Cao, Wang, Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018
(https://arxiv.org/abs/1705.10667).

DANN's domain classifier reads the features f alone, so it can align the marginal feature
distributions while the classes stay misaligned. CDAN conditions it on the classifier's
prediction g = softmax(logits): the discriminator D reads the multilinear map

    T(f, g) = f (x) g                                  (the flattened outer product, d_f x C)

or, when d_f x C exceeds ``max_multilinear`` (4096 in the paper), the randomized multilinear
map T(f, g) = (R_f f) . (R_g g) / sqrt(d) with fixed Gaussian matrices R_f, R_g of d rows
(``random_dim``, 1024). D is trained through a gradient reversal layer as in DANN, with the
same lambda ramp and learning-rate annealing. CDAN+E (``entropy_conditioning``, the default)
weights each sample's domain loss by w = 1 + exp(-H(g)), so that uncertain predictions, which
carry little class information, count less; the weights are normalised to sum to one within
each domain.

Deviations from the paper
-------------------------
- g enters T detached (the released code's choice: the conditioning carries no gradient to
  the classifier), and so do the entropy weights; the released code lets a reversed
  gradient flow through the entropy, TLlib (``tllib/alignment/cdan.py``) detaches it.
- The domain classifier is DANN's (default 1024-1024 with ReLU and dropout 0.5, the paper's);
  see :mod:`tlbench.methods.feature.dann` for the gradient-reversal and schedule deviations,
  which CDAN shares.
- The network is tlbench's; the features are ``layer`` (default ``features``, what the
  classifier reads). Labeled target samples join the source batch for L_y and count as target
  for the domain classifier.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import register_method
from ..deep import DeepNet
from ._adversarial import DomainClassifier, check_hidden, grad_reverse, grl_ramp
from .dann import DANN, domain_targets, layer_width


def multilinear_map(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The flattened outer product ``f (x) g`` of each row: ``(n, d_f * C)``."""
    return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)


def randomized_map(f: torch.Tensor, g: torch.Tensor, rf: torch.Tensor,
                   rg: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """``(f R_f^T) . (g R_g^T) / sqrt(d)``: its inner products estimate the multilinear map's."""
    return (f @ rf.T) * (g @ rg.T) / math.sqrt(rf.shape[0])


def entropy_weights(g: torch.Tensor, is_target: torch.Tensor) -> torch.Tensor:
    """CDAN+E's ``1 + exp(-H(g))``, normalised to sum to one within each domain (detached)."""
    with torch.no_grad():
        h = -(g * torch.log(g.clamp_min(1e-12))).sum(1)
        w = 1.0 + torch.exp(-h)
        out = torch.zeros_like(w)
        for mask in (is_target < 0.5, is_target >= 0.5):
            if mask.any():
                out[mask] = w[mask] / w[mask].sum()
        return out


@register_method("cdan")
class CDAN(DANN):
    """CDAN (+E): DANN whose domain classifier reads the features conditioned on the predictions.

    Parameters
    ----------
    entropy_conditioning : bool, default=True
        CDAN+E: weight the domain loss by the predictions' certainty.
    random_dim : int, default=1024
        Rows of the randomized multilinear map.
    max_multilinear : int, default=4096
        Largest ``d_f x C`` for the exact multilinear map; above it the randomized one.
    domain_weight, gamma, anneal, layer, discriminator_hidden, discriminator_dropout
        As :class:`~tlbench.methods.feature.dann.DANN`.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        As :class:`~tlbench.methods.feature.dann.DANN`; ``diagnostics_`` adds
        ``conditioning`` (``multilinear`` or ``randomized``) and the map's width.
    """

    paper: ClassVar[str] = "Long, Cao, Wang, Jordan, NeurIPS 2018"

    def __init__(
        self,
        *,
        entropy_conditioning: bool = True,
        random_dim: int = 1024,
        max_multilinear: int = 4096,
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
            domain_weight=domain_weight, gamma=gamma, anneal=anneal, layer=layer,
            discriminator_hidden=discriminator_hidden,
            discriminator_dropout=discriminator_dropout, backbone=backbone,
            pretrained=pretrained, weights_path=weights_path, bottleneck_dim=bottleneck_dim,
            dropout=dropout, backbone_lr_mult=backbone_lr_mult, hidden=hidden,
            input_shape=input_shape, image_size=image_size, train_blocks=train_blocks,
            cache_dir=cache_dir, weight_init=weight_init,
            random_state=random_state,
        )  # fmt: skip
        self.entropy_conditioning = entropy_conditioning
        self.random_dim = random_dim
        self.max_multilinear = max_multilinear

    def _check_params(self, model: DeepNet) -> None:
        super()._check_params(model)
        for name in ("random_dim", "max_multilinear"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

    def _wrap_model(self, model: DeepNet, task: Any) -> nn.Module:
        width, k = layer_width(model, self.layer), int(task.num_classes)
        self._randomized = width * k > int(self.max_multilinear)
        in_dim = int(self.random_dim) if self._randomized else width * k
        hidden = check_hidden(self.discriminator_hidden, "cdan.discriminator_hidden")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed() + 1)  # its own stream: the network's init unchanged
            model.domain_classifier = DomainClassifier(
                in_dim, hidden, 1, float(self.discriminator_dropout)
            )
            if self._randomized:
                # buffers: fixed, saved with the weights, never trained
                model.register_buffer("cdan_rf", torch.randn(in_dim, width))
                model.register_buffer("cdan_rg", torch.randn(in_dim, k))
        self._net = model
        return model

    def transfer_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The conditional domain loss through the reversal layer, scaled by lambda_p."""
        lam = float(self.domain_weight)
        if self.anneal:
            lam *= grl_ramp(source.progress, float(self.gamma))
        f = torch.cat([source.layers[self.layer], target.layers[self.layer]])
        g = torch.softmax(torch.cat([source.logits, target.logits]), dim=1).detach()
        if self._randomized:
            t = randomized_map(f, g, self._net.cdan_rf, self._net.cdan_rg)
        else:
            t = multilinear_map(f, g)
        logits = self._net.domain_classifier(grad_reverse(t, lam)).squeeze(1)
        d = domain_targets(source, target, self.target_domain_index_)
        per = nn.functional.binary_cross_entropy_with_logits(logits, d, reduction="none")
        if self.entropy_conditioning:
            w = entropy_weights(g, d)
            loss = (w * per).sum() / w.sum()
        else:
            loss = per.mean()
        acc = float(((logits.detach() > 0).float() == d).float().mean())
        return loss, {"domain_loss": float(loss.detach()), "domain_acc": acc, "grl_lambda": lam}

    def fit(self, task: Any, trainer: Any | None = None) -> CDAN:
        """Train as :class:`DANN`; record which conditioning map was used."""
        super().fit(task, trainer)
        self.diagnostics_["conditioning"] = "randomized" if self._randomized else "multilinear"
        return self
