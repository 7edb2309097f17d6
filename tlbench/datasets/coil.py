"""COIL20 split by pose into COIL1 and COIL2, as used by JDA (720 32x32 images each, 20 objects).

The split of Long, Wang, Ding, Sun, Yu, "Transfer Feature Learning with Joint Distribution
Adaptation", ICCV 2013, of the Columbia Object Image Library (Nene, Nayar, Murase, 1996), read
from ``<data_dir>/coil20_jda/`` (``COIL1.mat``, ``COIL2.mat``; see the ``SOURCE.md`` there).
"""

from __future__ import annotations

from pathlib import Path

from ..registry import register_dataset
from ..task import TransferTask
from .common import mat_pair_task

FOLDER = "coil20_jda"
FILES = {"coil1": "COIL1.mat", "coil2": "COIL2.mat"}
NUM_CLASSES = 20
N_FEATURES = 1024  # 32 x 32 pixels


@register_dataset(
    "coil20",
    kind="tabular",
    domains=tuple(FILES),
    description="COIL20 split by pose into COIL1 / COIL2 (720 each), 1024 pixels, 20 classes",
    paper="Long et al., Transfer Feature Learning with Joint Distribution Adaptation, ICCV 2013",
)
def coil20(
    *,
    source: str = "coil1",
    target: str = "coil2",
    data_dir: str | Path = "data",
    preprocess: str = "l2",
    protocol: str = "transductive",
    test_size: float = 0.3,
    target_labeled: int | float | str | None = 0,
    seed: int = 0,
) -> TransferTask:
    """COIL1 and COIL2: 32x32 grey images in [0, 1] as 1024 features, 36 per object and domain.

    Parameters
    ----------
    source, target : {"coil1", "coil2"}
        The two domains, either direction.
    data_dir : str or Path
        The folder that holds ``coil20_jda/``.
    preprocess : str, default="l2"
        Applied per domain (see :data:`~tlbench.datasets.common.PREPROCESSORS`). ``l2``
        (the default, the JDA protocol) scales every image to unit Euclidean norm; 1-NN on
        it gives the JDA paper's NN column exactly (COIL1->COIL2 83.61, COIL2->COIL1 82.78).
        ``none``, ``l1``, ``zscore``, ``l1_zscore``, ``binary`` are also accepted.
    protocol : {"transductive", "inductive"}, default="transductive"
        ``transductive`` (the JDA protocol) gives every target image unlabeled to ``fit`` and
        scores on them; ``inductive`` holds out a stratified ``test_size`` part of the target.
    test_size, target_labeled, seed
        See :mod:`tlbench.datasets.common`.

    Returns
    -------
    task : TransferTask

    References
    ----------
    M. Long, J. Wang, G. Ding, J. Sun, P. S. Yu. Transfer Feature Learning with Joint
    Distribution Adaptation. ICCV 2013. S. A. Nene, S. K. Nayar, H. Murase. Columbia Object
    Image Library (COIL-20). Technical Report CUCS-005-96, 1996.
    """
    return mat_pair_task(
        "coil20",
        FOLDER,
        FILES,
        x_key="fts",
        n_features=N_FEATURES,
        num_classes=NUM_CLASSES,
        source=source,
        target=target,
        data_dir=data_dir,
        preprocess=preprocess,
        protocol=protocol,
        test_size=test_size,
        target_labeled=target_labeled,
        seed=seed,
    )
