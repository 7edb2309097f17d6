"""``domain_confusion``: domain confusion and soft-label transfer (simultaneous deep transfer).

Tzeng, Hoffman, Darrell, Saenko, "Simultaneous Deep Transfer Across Domains and Tasks", ICCV
2015 (https://arxiv.org/abs/1510.02192).

Two players share a step. A domain classifier q = softmax(theta_D^T f(x)) on the
representation f learns to tell the domains apart,

    L_D = - sum_d 1[y_D = d] log q_d                              (the paper's eq. 2)

with the representation held fixed, and the representation is trained, with the domain
classifier held fixed, to make q *uniform*, by the cross-entropy against the uniform
distribution over the D = 2 domains,

    L_conf = - sum_d (1 / D) log q_d                              (eq. 3)

which is minimal (log D) exactly when q = (1/2, 1/2). The paper alternates the two
optimisations. With labeled target samples a soft-label loss transfers the relations between
the categories: l^(k), the average over the source samples of class k of the tempered softmax
softmax(z / tau), is the target for a labeled target sample of class k,

    L_soft = - sum_i l^(y_i)_i log p_i,   p = softmax(z_target / tau)      (eq. 5)

The representation's objective is L_C + lambda L_conf + nu L_soft (eq. 1), with L_C the
classification loss on the labeled source (and labeled target) samples. Without labeled target
samples only the confusion loss transfers.

Deviations from the paper
-------------------------
- The two optimisations run as two updates of one trainer step, each gradient taken at the
  same point (:class:`tlbench.trainer.Update`), the paper's alternation with one iteration
  of each per batch; the paper's Caffe implementation details (iterations per player) are
  not reproduced.
- The soft labels l^(k) are a running average (``soft_label_momentum``) of the tempered
  softmax of the current network over the source batches, detached; the paper averages the
  activations of a network trained on the source once. Before the first source sample of a
  class has been seen, its soft label is uniform.
- The network is tlbench's (backbone, bottleneck, classifier); the domain classifier reads
  ``layer`` (``features``, the paper's fc7-level representation) and is a parameterised MLP
  (the paper: a single fully connected layer on fc7; ``discriminator_hidden: []``, the
  default, is that).
- Defaults lambda = 0.01, nu = 0.1, tau = 2: the values we read in the paper's experiments
  section; we could not check them against its text here.
- ``pretrain_steps`` (default 0: off, the paper) adds a first phase that trains the network on
  the classification loss alone, and ``adversarial_lr`` / ``adversarial_betas`` (default: the
  trainer's optimiser) give both players a fresh Adam once the confusion starts. Neither is in
  the paper (it starts from an ImageNet network); together they are the schedule of ADDA's
  framework (Tzeng et al. 2017: source pre-training, then Adam 2e-4, betas (0.5, 0.999)),
  where ADDA's authors measured this method on the digits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import register_method
from ...trainer import Update
from ..deep import DeepMethod, DeepNet, check_layers
from ._adversarial import DomainClassifier, check_betas, check_hidden, resolve_steps
from .dann import domain_targets, layer_width


def confusion_loss(domain_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the predicted domain distribution against the uniform one (eq. 3)."""
    logq = nn.functional.log_softmax(domain_logits, dim=1)
    return -logq.mean(dim=1).mean()


@register_method("domain_confusion")
class DomainConfusion(DeepMethod):
    """Domain confusion (+ soft labels with labeled target samples), Tzeng et al. 2015.

    Parameters
    ----------
    confusion_weight : float, default=0.01
        lambda, the weight of the confusion loss.
    soft_label_weight : float, default=0.1
        nu, the weight of the soft-label loss (used only with labeled target samples).
    temperature : float, default=2.0
        tau of the soft labels and of the tempered target softmax.
    soft_label_momentum : float, default=0.99
        The running average's momentum of the per-class soft labels.
    layer : str, default="features"
        The representation the domain classifier reads.
    discriminator_hidden : list of int, default=()
        Hidden widths of the domain classifier (empty: one linear layer, as the paper).
    pretrain_steps : int or float, default=0
        Steps of classification-only training before the confusion starts: an integer, or a
        fraction of ``trainer.max_steps`` (0: none, the paper).
    adversarial_lr : float, optional
        Adam's learning rate of both players once the confusion starts, constant, without
        weight decay (default: the trainer's optimiser throughout).
    adversarial_betas : list of float, default=(0.5, 0.999)
        Adam's betas with ``adversarial_lr``.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    soft_labels_ : ndarray of shape (n_classes, n_classes)
        The final soft label of each class.
    pretrain_steps_ : int
        The resolved number of pre-training steps.
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`; ``diagnostics_`` adds the final
        domain classifier loss and accuracy and the final confusion loss.
    """

    paper: ClassVar[str] = "Tzeng, Hoffman, Darrell, Saenko, ICCV 2015"

    def __init__(
        self,
        *,
        confusion_weight: float = 0.01,
        soft_label_weight: float = 0.1,
        temperature: float = 2.0,
        soft_label_momentum: float = 0.99,
        layer: str = "features",
        discriminator_hidden: tuple[int, ...] | list[int] = (),
        pretrain_steps: int | float = 0,
        adversarial_lr: float | None = None,
        adversarial_betas: tuple[float, float] | list[float] = (0.5, 0.999),
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
        self.confusion_weight = confusion_weight
        self.soft_label_weight = soft_label_weight
        self.temperature = temperature
        self.soft_label_momentum = soft_label_momentum
        self.layer = layer
        self.discriminator_hidden = discriminator_hidden
        self.pretrain_steps = pretrain_steps
        self.adversarial_lr = adversarial_lr
        self.adversarial_betas = adversarial_betas

    def _check_params(self, model: DeepNet) -> None:
        for name in ("confusion_weight", "soft_label_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.soft_label_momentum < 1:
            raise ConfigError(
                f"soft_label_momentum must be in [0, 1), got {self.soft_label_momentum}"
            )
        check_hidden(self.discriminator_hidden, "domain_confusion.discriminator_hidden")
        if self.adversarial_lr is not None and not self.adversarial_lr > 0:
            raise ConfigError(f"adversarial_lr must be > 0, got {self.adversarial_lr}")
        check_betas(self.adversarial_betas, "adversarial_betas")
        check_layers([self.layer], model, "domain_confusion.layer")

    def _wrap_model(self, model: DeepNet, task: Any) -> nn.Module:
        hidden = check_hidden(self.discriminator_hidden, "domain_confusion.discriminator_hidden")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed() + 1)
            model.domain_classifier = DomainClassifier(layer_width(model, self.layer), hidden, 2)
        k = task.num_classes
        # a buffer: checkpoints and resume carry the running soft labels with the weights
        model.register_buffer("soft_labels", torch.full((k, k), 1.0 / k))
        model.register_buffer("soft_label_seen", torch.zeros(k))
        self._net = model
        return model

    def updates(self, model: nn.Module, groups: list[dict[str, Any]]) -> list[Update]:
        """The representation (and classifier) and the domain classifier, one update each.

        With ``pretrain_steps``, a classification-only update of the network comes first;
        the two players start after it.
        """
        n = resolve_steps(self.pretrain_steps, int(self.trainer_.max_steps),
                          "domain_confusion.pretrain_steps", allow_zero=True)  # fmt: skip
        self.pretrain_steps_ = n
        disc = {id(p) for p in model.domain_classifier.parameters()}
        net_groups = [
            {**g, "params": [p for p in g["params"] if id(p) not in disc]} for g in groups
        ]
        net_groups = [g for g in net_groups if g["params"]]
        opt: dict[str, Any] = {"start": n}
        if self.adversarial_lr is not None:
            opt.update(optimizer="adam", lr=float(self.adversarial_lr), weight_decay=0.0,
                       betas=check_betas(self.adversarial_betas, "adversarial_betas"),
                       schedule="constant")  # fmt: skip
        players = [
            Update("network", net_groups, self._network_loss, **opt),
            Update("domain_classifier", list(model.domain_classifier.parameters()),
                   self._domain_loss, classification=False, **opt),
        ]  # fmt: skip
        return ([Update("pretrain", net_groups, None, stop=n)] if n else []) + players

    def _domain_logits(self, source: Any, target: Any, detach: bool) -> torch.Tensor:
        f = torch.cat([source.layers[self.layer], target.layers[self.layer]])
        return self._net.domain_classifier(f.detach() if detach else f)

    def _domain_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """L_D on the detached representation: only the domain classifier learns from it."""
        logits = self._domain_logits(source, target, detach=True)
        d = domain_targets(source, target, self.target_domain_index_).long()
        loss = nn.functional.cross_entropy(logits, d)
        acc = float((logits.argmax(1) == d).float().mean())
        return loss, {"domain_loss": float(loss.detach()), "domain_acc": acc}

    def _update_soft_labels(self, source: Any) -> None:
        net, tau = self._net, float(self.temperature)
        own = torch.ones_like(source.y, dtype=torch.bool)
        if self.target_domain_index_ is not None and source.domain is not None:
            own = source.domain != self.target_domain_index_
        probs = torch.softmax(source.logits.detach() / tau, dim=1)
        m = float(self.soft_label_momentum)
        for k in torch.unique(source.y[own & (source.y >= 0)]).tolist():
            mean = probs[own & (source.y == k)].mean(0)
            first = net.soft_label_seen[k] == 0
            net.soft_labels[k] = mean if first else m * net.soft_labels[k] + (1 - m) * mean
            net.soft_label_seen[k] = 1

    def _network_loss(self, source: Any, target: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The representation's transfer terms: lambda L_conf + nu L_soft."""
        conf = confusion_loss(self._domain_logits(source, target, detach=False))
        logs = {"confusion_loss": float(conf.detach())}  # log 2 = 0.693 at full confusion
        loss = float(self.confusion_weight) * conf
        self._update_soft_labels(source)
        if self.target_domain_index_ is not None and source.domain is not None:
            mask = (source.domain == self.target_domain_index_) & (source.y >= 0)
            if mask.any():
                logp = nn.functional.log_softmax(
                    source.logits[mask] / float(self.temperature), dim=1
                )
                soft = -(self._net.soft_labels[source.y[mask]] * logp).sum(1).mean()
                loss = loss + float(self.soft_label_weight) * soft
                logs["soft_label_loss"] = float(soft.detach())
        return loss, logs

    def fit(self, task: Any, trainer: Any | None = None) -> DomainConfusion:
        """Train as :meth:`DeepMethod.fit`; record the soft labels and the players' losses."""
        super().fit(task, trainer)
        self.soft_labels_ = self.model_.soft_labels.detach().cpu().numpy()
        for key in ("domain_loss", "domain_acc", "confusion_loss", "soft_label_loss"):
            if self.history_.get(key):
                self.diagnostics_[f"final_{key}"] = self.history_[key][-1]
        self.diagnostics_["pretrain_steps"] = self.pretrain_steps_
        return self
