"""``source_only_deep``: the deep baseline, the same network and schedule with no transfer loss.

Every deep table needs it: it is DDC or DAN with the transfer weight at 0 (the "CNN" / "NN" rows
of the DDC, DAN and DANN papers). It trains on the labeled source, plus any labeled target
samples, and never looks at the unlabeled target.

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
    backbone, pretrained, weights_path, bottleneck_dim, dropout, backbone_lr_mult, hidden,
    input_shape, image_size, train_blocks, cache_dir, random_state
        See :class:`~tlbench.methods.deep.DeepMethod`.

    Attributes
    ----------
    model_, trainer_, history_, classes_, device_, precision_, diagnostics_
        See :class:`~tlbench.methods.deep.DeepMethod`.
    """

    family: ClassVar[str] = "baseline"
    uses_target: ClassVar[bool] = False
    paper: ClassVar[str] = "no adaptation: the deep network of DDC/DAN without a transfer loss"
