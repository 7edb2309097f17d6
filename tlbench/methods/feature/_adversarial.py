"""Building blocks of the adversarial deep methods: gradient reversal, domain classifiers, ramps.

Shared by ``dann`` (Ganin & Lempitsky 2015), ``domain_confusion`` (Tzeng et al. 2015) and
``adda`` (Tzeng et al. 2017). Nothing here trains: the trainer runs every update
(:class:`tlbench.trainer.Update`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError

__all__ = [
    "DomainClassifier",
    "GradientReversal",
    "check_betas",
    "check_hidden",
    "domain_labels",
    "grad_reverse",
    "grl_ramp",
    "resolve_steps",
]


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``-coeff`` (Ganin & Lempitsky)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:  # noqa: D102
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; the gradient flowing back through it is reversed and scaled by ``coeff``."""
    return GradientReversal.apply(x, coeff)


def grl_ramp(progress: float, gamma: float = 10.0) -> float:
    """DANN's adaptation factor ``2 / (1 + exp(-gamma p)) - 1``: 0 at the start, -> 1 at the end."""
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


def resolve_steps(value: Any, max_steps: int, what: str, *, allow_zero: bool = False) -> int:
    """A phase length: an integer number of steps, or a fraction of ``max_steps``.

    Both phases (before and after the switch) must keep at least one step; ``allow_zero``
    allows an empty first phase. Anything else is one :class:`ConfigError` naming ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    n = int(value) if isinstance(value, int) else int(round(float(value) * max_steps))
    if not (0 if allow_zero else 1) <= n < max_steps:
        need = "the phase after it needs" if allow_zero else "both phases need"
        raise ConfigError(
            f"{what}={value!r} gives {n} pre-training steps of the {max_steps} "
            f"trainer.max_steps; {need} at least one step"
        )
    return n


def check_betas(betas: Any, what: str) -> tuple[float, float]:
    """Adam's two betas in [0, 1), else one :class:`ConfigError` naming ``what``."""
    b = list(betas) if isinstance(betas, list | tuple) else [betas]
    if len(b) != 2 or not all(isinstance(x, int | float) and 0 <= x < 1 for x in b):
        raise ConfigError(f"{what} must be two numbers in [0, 1), got {b}")
    return float(b[0]), float(b[1])


def check_hidden(hidden: Any, what: str) -> list[int]:
    """A list of positive layer widths, else one :class:`ConfigError` naming ``what``."""
    widths = list(hidden or [])
    if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in widths):
        raise ConfigError(f"{what} must hold integers >= 1, got {widths!r}")
    return widths


class DomainClassifier(nn.Module):
    """An MLP ``in_dim -> hidden... -> n_out`` with ReLU (and dropout) between the layers.

    ``n_out=1``: one logit (source vs. target, binary cross-entropy), as DANN and ADDA;
    ``n_out=2``: two logits (softmax over the domains), as the domain-confusion loss.
    """

    def __init__(self, in_dim: int, hidden: list[int], n_out: int = 1, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Domain logits of ``x`` (shape ``(n, n_out)``)."""
        return self.net(x)


def domain_labels(n_source: int, n_target: int, device: torch.device) -> torch.Tensor:
    """``0`` for the source rows, ``1`` for the target rows (float, for BCE with logits)."""
    return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])
