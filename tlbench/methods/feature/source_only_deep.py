"""``source_only_deep``: the deep baseline, the same network and schedule with no transfer loss.

Every deep table needs it: it is DDC or DAN with the transfer weight at 0 (the "CNN" / "NN" rows
of the DDC, DAN and DANN papers). It trains on the labeled source, plus any labeled target
samples, and by default never looks at the unlabeled target.

On a backbone with batch normalisation that default is *not* DDC/DAN at weight 0: their step
runs the source and the target batch through one train-mode forward, so the BatchNorm
statistics (and the normalisation of the source batch) see the target too. ``forward_target=
True`` runs the baseline the same way, the target outputs unused, and it then trains exactly
as ``mmd(mmd_weight=0)`` does (a test checks the weights). Off by default, so that the
baseline uses no target data at all, as TLlib's source-only rows do; on backbones without
batch norm (``mlp``, ``lenet``) the two are the same.

Deviations from the paper: none (no paper; the row each deep paper reports as its baseline).
"""

from __future__ import annotations

from typing import ClassVar

from ...registry import register_method
from ..deep import DeepMethod


@register_method("source_only_deep")
class SourceOnlyDeep(DeepMethod):
    """Train the deep network on the labeled source only (no adaptation).

    Parameters
    ----------
    forward_target : bool, default=False
        Pass each step's target batch through the network with the source batch (unused by
        the loss): BatchNorm layers then normalise and track both domains, as in DDC/DAN.
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, weight_init, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`.
    """

    family: ClassVar[str] = "baseline"
    uses_target: ClassVar[bool] = False
    paper: ClassVar[str] = "no adaptation: the deep network of DDC/DAN without a transfer loss"

    def __init__(
        self,
        *,
        forward_target: bool = False,
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
        self.forward_target = forward_target

    def forwards_target(self) -> bool:
        """Whether the target batch joins the train-mode forward (``forward_target``)."""
        return bool(self.forward_target)
