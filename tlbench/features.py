"""One frozen-feature cache for the whole framework.

A pretrained network's frozen convolutional blocks are run once over a set of images and their
outputs stored on disk, keyed by everything that determines them: the backbone, its weights
(the weights file's SHA-256), the input transform (size, resize filter, normalisation), the
images (file names, labels, corruptions and bytes; or the raw array's bytes), the layer (how
many blocks, pooled or not) and any mirroring. Three users share it:

- ``finetune``'s stage 1 (the lecture's "bottleneck features": the whole base, unpooled);
- deep methods whose lower blocks are frozen (``method.train_blocks``): they train only the
  blocks above the cached outputs and their adaptation layers;
- tabular methods on an image dataset (``dataset.features=<backbone>``,
  :func:`as_tabular`): the globally pooled features of the whole base are their feature
  vectors, so ``kmm``, ``tca``, ``coral``... run on photos unchanged.

The pooled features a deep method with ``train_blocks=0`` reads are the very entry a tabular
method reads: a second method on the same photos decodes nothing and runs no network. An
entry is read with ``torch.load(..., weights_only=True)`` and used only if its stored key,
shape and values check out; anything else (truncated, foreign, corrupt) is recomputed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Cache lookups of this process: ``hits`` and ``misses`` (tests count them, never time them).
CACHE_STATS: Counter = Counter()

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (memoised per path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _FILE_DIGESTS[memo] = h.hexdigest()
    return _FILE_DIGESTS[memo]


def cache_key(parts: dict[str, Any]) -> str:
    """The hex key of a JSON-serialisable description."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


def cached(
    parts: dict[str, Any],
    compute: Callable[[], torch.Tensor],
    cache_dir: str | Path | None,
    n: int,
) -> tuple[torch.Tensor, bool]:
    """Features for ``parts``: from ``cache_dir`` when a valid entry exists, else computed.

    Parameters
    ----------
    parts : dict
        What determines the features (becomes the key).
    compute : callable
        Returns the features, a tensor with ``n`` rows.
    cache_dir : str or Path or None
        The cache folder; ``None`` disables caching.
    n : int
        Expected number of rows (a stored tensor of another length is not used).

    Returns
    -------
    features : Tensor
    hit : bool
        Whether they came from the cache.
    """
    if cache_dir is None:
        CACHE_STATS["misses"] += 1
        return compute(), False
    key = cache_key(parts)
    path = Path(cache_dir).expanduser() / f"{key}.pt"
    if path.exists():
        reason = None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            feats = obj.get("features") if isinstance(obj, dict) else None
            if not isinstance(obj, dict) or obj.get("key") != key:
                reason = "its stored key differs"
            elif not isinstance(feats, torch.Tensor) or feats.shape[0] != n:
                reason = "it does not hold features for the files"
            elif not torch.isfinite(feats).all():
                reason = "it holds non-finite values"
            else:
                log.info("feature cache hit: %s", path)
                CACHE_STATS["hits"] += 1
                return feats, True
        except Exception as exc:  # any unreadable file: recompute, never crash
            reason = f"it cannot be read ({type(exc).__name__}: {exc})"
        log.warning("feature cache %s is not used: %s; recomputing", path, reason)
    CACHE_STATS["misses"] += 1
    feats = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save({"key": key, "parts": json.dumps(parts, sort_keys=True), "features": feats}, tmp)
    os.replace(tmp, path)  # atomic: a killed run leaves no half-written entry
    log.info("feature cache written: %s", path)
    return feats, False


# --------------------------------------------------------------------------- images


def load_images(X: Any, size: int) -> torch.Tensor:
    """``(n, 3, size, size)`` images: uint8 decoded from files, or float resized from arrays.

    ``X`` is an :class:`~tlbench.datasets.images.ImageFiles` (decoded, resized and corrupted
    as it serves its files), a Dataset of image tensors, or an array ``(n, 1 or 3, H, W)`` in
    [0, 1]; grey images are repeated to RGB, as the pretrained bases take.
    """
    if hasattr(X, "with_size") and hasattr(X, "load_uint8"):  # ImageFiles
        return torch.from_numpy(X.with_size(int(size)).load_uint8())
    if isinstance(X, torch.utils.data.Dataset) and not isinstance(X, np.ndarray):
        X = np.stack([np.asarray(X[i][0] if isinstance(X[i], tuple) else X[i])
                      for i in range(len(X))])  # fmt: skip
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise DataError(f"expected images (n, 1 or 3, H, W); got shape {X.shape}")
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                      align_corners=False)  # fmt: skip
    return x.contiguous()


def images_digest(X: Any) -> str:
    """What identifies a set of images for a cache key, without decoding image files."""
    if hasattr(X, "checksum"):  # image files: names, labels, shifts and bytes
        return X.checksum()
    raw = X if isinstance(X, np.ndarray) else load_images(X, _sample_side(X)).numpy()
    return hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()


def _sample_side(X: Any) -> int:
    first = X[0][0] if isinstance(X[0], tuple) else X[0]
    return int(torch.as_tensor(first).shape[-1])


class _Images(torch.utils.data.Dataset):
    """uint8 or float images served as float tensors in [0, 1] (optionally mirrored)."""

    def __init__(self, images: torch.Tensor, flip: bool = False) -> None:
        self.images, self.flip = images, flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[int(i)]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return x.flip(-1) if self.flip else x


# --------------------------------------------------------------------------- the frozen base


@dataclass(frozen=True)
class FrozenSpec:
    """A pretrained network's frozen lower part, as a cache key describes it.

    Attributes
    ----------
    backbone : str
        A backbone with convolutional blocks (:func:`tlbench.backbones.create_backbone`).
    pretrained : bool
        Pretrained weights (else a seeded random initialisation).
    weights_path : str or None
        The weights file or folder (``None``: the torch hub cache / the weights package).
    image_size : int
        Images are resized to ``image_size x image_size``.
    blocks : int or None
        How many convolutional blocks run (``None``: all).
    pool : bool
        Average the output over space (the pooled vector of the whole base).
    seed : int
        Seed of the random initialisation when ``pretrained`` is false.
    """

    backbone: str
    pretrained: bool = True
    weights_path: str | None = None
    image_size: int = 224
    blocks: int | None = None
    pool: bool = True
    seed: int = 0


class FrozenBase(nn.Module):
    """Input normalisation, then the first ``blocks`` convolutional blocks (then a pool).

    ``forward_features`` returns the cached quantity, ``forward_head`` passes it through, so
    the trainer's ``forward_layers`` runs it on its device in inference mode.
    """

    def __init__(self, backbone: nn.Module, blocks: int | None, pool: bool) -> None:
        super().__init__()
        all_blocks = backbone.conv_blocks()
        k = len(all_blocks) if blocks is None else int(blocks)
        if not 0 <= k <= len(all_blocks):
            raise ConfigError(f"cannot freeze {k} of the {len(all_blocks)} blocks")
        self.body = nn.Sequential(*[b for _, b in all_blocks[:k]])
        self.pool = pool
        self.register_buffer("mean", torch.tensor(backbone.input_mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(backbone.input_std).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen output for images ``x`` (RGB in [0, 1])."""
        x = self.body((x - self.mean) / self.std)
        return x.mean(dim=(2, 3)) if self.pool else x

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        """The features unchanged (the trainer's forward wants a head)."""
        return f


def build_backbone(spec: FrozenSpec, num_classes: int = 2) -> nn.Module:
    """The backbone of ``spec`` with its weights (seeded when random)."""
    from .backbones import create_backbone

    shape = (3, int(spec.image_size), int(spec.image_size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec.seed))
        return create_backbone(spec.backbone, num_classes=num_classes, in_shape=shape,
                               pretrained=spec.pretrained,
                               weights_path=spec.weights_path)  # fmt: skip


@functools.lru_cache(maxsize=4)
def frozen_base(spec: FrozenSpec) -> FrozenBase:
    """The frozen network of ``spec``, built once per process (never train it in place).

    A sweep's methods share it as they share the cache entries it fills.
    """
    return FrozenBase(build_backbone(spec), spec.blocks, spec.pool)


def key_parts(spec: FrozenSpec, X: Any, flip: bool = False) -> dict[str, Any]:
    """The description the cache key of ``X``'s frozen features is made from."""
    from .backbones import weights_file

    base = frozen_base(spec)
    if spec.pretrained:
        weights = file_digest(weights_file(spec.backbone, spec.weights_path))
    else:
        weights = f"random-init-seed{spec.seed}"
    return {
        "version": 2,
        "backbone": spec.backbone,
        "weights": weights,
        "transform": {
            "size": int(spec.image_size),
            "resize": "pil-bilinear-antialias",
            "mean": [float(v) for v in base.mean.flatten()],
            "std": [float(v) for v in base.std.flatten()],
        },
        "files": images_digest(X),
        "layer": {
            "blocks": "all" if spec.blocks is None else int(spec.blocks),
            "pool": bool(spec.pool),
        },  # fmt: skip
    } | ({"hflip": True} if flip else {})


def frozen_features(
    spec: FrozenSpec,
    X: Any,
    *,
    trainer: Any | None = None,
    cache_dir: str | Path | None = None,
    images: Callable[[], torch.Tensor] | None = None,
    flip: bool = False,
    batch_size: int = 4,
) -> tuple[np.ndarray, bool]:
    """The frozen part's outputs on images ``X``, from the cache or computed (then stored).

    Parameters
    ----------
    spec : FrozenSpec
        Which network, weights, input size and layer.
    X : ImageFiles, Dataset or ndarray
        The images.
    trainer : Trainer, optional
        Runs the network (its device and precision); default: a CPU trainer.
    cache_dir : str or Path, optional
        The cache folder (``None``: no cache).
    images : callable, optional
        Returns ``X`` decoded at ``spec.image_size`` (a caller that decodes anyway); a cache
        hit decodes nothing.
    flip : bool, default=False
        Of the mirror images.
    batch_size : int, default=4
        Images per forward pass (small batches run faster on a CPU: the activations of
        EfficientNet-Lite0 at 224 x 224 stay in cache).

    Returns
    -------
    features : ndarray of float32
        ``(n, C)`` pooled, else ``(n, C, H, W)``.
    hit : bool
        Whether they came from the cache.
    """
    from .trainer import Trainer

    origin = getattr(X, "origin", None)
    if origin is not None:  # a subset of a set of files: read (or fill) the whole set's entry
        files, index = origin
        feats, hit = frozen_features(spec, files, trainer=trainer, cache_dir=cache_dir,
                                     flip=flip, batch_size=batch_size)  # fmt: skip
        return feats[index], hit
    trainer = trainer if trainer is not None else Trainer(progress_bar=False)
    base = frozen_base(spec)

    def compute() -> torch.Tensor:
        x = images() if images is not None else load_images(X, int(spec.image_size))
        desc = f"features {spec.backbone} ({len(x)} images)"
        out = trainer.forward_layers(base, _Images(x, flip), ["features"], batch_size=batch_size,
                                     progress=desc)  # fmt: skip
        return torch.from_numpy(out["features"])

    feats, hit = cached(key_parts(spec, X, flip), compute, cache_dir, len(X))
    return feats.numpy(), hit


# --------------------------------------------------------------------------- tabular view


def parse_spec(features: Any, seed: int = 0) -> FrozenSpec | None:
    """``dataset.features``: a backbone name or a mapping of :class:`FrozenSpec` fields.

    ``imagenet`` stands for the deep methods' default ImageNet backbone
    (:func:`tlbench.backbones.resolve_backbone`).
    The image size defaults to the backbone's native input size; the features are the pooled
    output of the whole convolutional base.
    """
    from .backbones import NATIVE_SIZE, resolve_backbone

    if features is None or features in ("none", False):
        return None
    opts = {"backbone": features} if isinstance(features, str) else dict(features)
    unknown = sorted(set(opts) - {"backbone", "pretrained", "weights_path", "image_size"})
    if unknown or "backbone" not in opts:
        raise ConfigError(
            f"dataset.features must be a backbone name or a mapping with backbone, pretrained, "
            f"weights_path, image_size; got {features!r}"
        )
    name = resolve_backbone(str(opts["backbone"]), opts.get("weights_path"))[0]
    size = opts.get("image_size") or NATIVE_SIZE.get(name)
    if size is None:
        raise ConfigError(f"dataset.features={name!r}: not a backbone with convolutional blocks")
    spec = FrozenSpec(name, bool(opts.get("pretrained", True)), opts.get("weights_path"),
                      int(size), None, True, int(seed))  # fmt: skip
    frozen_base(spec)  # a missing weights file or a wrong name fails here, in one line
    return spec


def as_tabular(task: Any, spec: FrozenSpec, *, trainer: Any | None = None,
               cache_dir: str | Path | None = None) -> Any:  # fmt: skip
    """The image task ``task`` as a tabular task of ``spec``'s pooled frozen features.

    Source, target and test keep their labels, names and weights; the record's ``task_info``
    says which features were used and whether they came from the cache.
    """
    from .task import Domain

    if task.kind != "image":
        raise ConfigError(f"dataset.features applies to image datasets; this task is {task.kind}")
    hits = {}

    def convert(domain: Domain | None, role: str) -> Domain | None:
        if domain is None:
            return None
        feats, hits[role] = frozen_features(spec, domain.X, trainer=trainer, cache_dir=cache_dir)
        return replace(domain, X=feats)

    info = dict(task.info)
    info["features"] = {"backbone": spec.backbone, "pretrained": spec.pretrained,
                        "image_size": spec.image_size, "pooled": True,
                        "cache_hits": hits}  # fmt: skip
    return replace(task, source=convert(task.source, "source"),
                   target=convert(task.target, "target"), test=convert(task.test, "test"),
                   kind="tabular", info=info)  # fmt: skip


__all__ = [
    "CACHE_STATS",
    "FrozenBase",
    "FrozenSpec",
    "as_tabular",
    "build_backbone",
    "cache_key",
    "cached",
    "file_digest",
    "frozen_base",
    "frozen_features",
    "key_parts",
    "load_images",
    "parse_spec",
]
