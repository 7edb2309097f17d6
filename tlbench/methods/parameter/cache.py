"""A disk cache for bottleneck features, keyed by everything that determines them.

The key is the SHA-256 of a JSON description: backbone, weights (the weights file's SHA-256),
input transform (size, resize filter, normalisation) and the file list's checksum (names,
labels, bytes). A sweep over top-model settings therefore extracts features once. A cache file
is read with ``torch.load(..., weights_only=True)`` and used only if its stored key, shape and
values check out; anything else (truncated, foreign, corrupt) is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

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
                return feats, True
        except Exception as exc:  # any unreadable file: recompute, never crash
            reason = f"it cannot be read ({type(exc).__name__}: {exc})"
        log.warning("feature cache %s is not used: %s; recomputing", path, reason)
    feats = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save({"key": key, "parts": json.dumps(parts, sort_keys=True), "features": feats}, tmp)
    os.replace(tmp, path)  # atomic: a killed run leaves no half-written entry
    log.info("feature cache written: %s", path)
    return feats, False
