"""Corruptions of target photos: real domain shifts on real images, ImageNet-C style.

``dataset.target_shift=<name> dataset.shift_severity=1..5`` corrupts every target photo (the
unlabeled target training images, any labeled target images and the test images: the same
shifted domain), never the source. The corruptions and their five severities follow
Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019 (ImageNet-C), where that benchmark has them:

==============  ==========================================  ===========================
name            what it does                                severity 1 .. 5
==============  ==========================================  ===========================
gaussian_noise  add N(0, c^2) to pixels in [0, 1]           c = .08 .12 .18 .26 .38
gaussian_blur   Gaussian filter of standard deviation c     c = 1 2 3 4 6 (pixels)
jpeg            re-encode as JPEG at quality c              c = 25 18 15 10 7
contrast        blend with the mean grey: factor c          c = .4 .3 .2 .1 .05
brightness      add c to the V channel of HSV               c = .1 .2 .3 .4 .5
pixelate        box-downsample by c, upsample back          c = .6 .5 .4 .3 .25
grayscale       blend with the grey image: weight c         c = .2 .4 .6 .8 1
==============  ==========================================  ===========================

Deviations from ImageNet-C: the corruption is applied to the image at the size it is served
(the method's input size), not to a 224 x 224 centre crop, with ImageNet-C's parameters;
blur, contrast and grayscale use torchvision's functional transforms (contrast blends with
the mean of the grey image, ImageNet-C with the per-channel mean); ``grayscale`` is not an
ImageNet-C corruption (colour removal, a common photo-domain shift). Noise is the only random
corruption: its generator is seeded by the run's seed, the corruption and the file's name,
so a photo is corrupted the same way in every run and every method of that seed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

#: Severity parameters, index severity - 1.
PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "gaussian_blur": (1.0, 2.0, 3.0, 4.0, 6.0),
    "jpeg": (25, 18, 15, 10, 7),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "grayscale": (0.2, 0.4, 0.6, 0.8, 1.0),
}
SHIFTS: tuple[str, ...] = tuple(PARAMETERS)
#: Corruptions that draw random numbers (seeded by the run's seed and the file).
RANDOM_SHIFTS: tuple[str, ...] = ("gaussian_noise",)


@dataclass(frozen=True)
class Shift:
    """One corruption at one severity, seeded by the run's seed."""

    name: str
    severity: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        check_shift(self.name, self.severity)

    def __str__(self) -> str:
        return f"{self.name}@{self.severity}"

    def key(self) -> str:
        """What a cache key needs of the shift: its name, severity and, for noise, the seed.

        The other corruptions are deterministic: every seed of a study shares their entries.
        """
        seeded = f"#seed{self.seed}" if self.name in RANDOM_SHIFTS else ""
        return f"{self.name}@{self.severity}{seeded}"

    def apply(self, image: np.ndarray, key: str) -> np.ndarray:
        """Corrupt one ``(H, W, 3)`` uint8 RGB image; ``key`` (its file name) seeds the noise."""
        return corrupt(image, self.name, self.severity, _rng(self, key))


def check_shift(name: str, severity: int) -> None:
    """Refuse an unknown corruption (listing the valid ones) or a severity outside 1..5."""
    if name not in PARAMETERS:
        raise ConfigError(
            f"unknown dataset.target_shift {name!r}; choose one of {', '.join(SHIFTS)} "
            "(or null for no shift)"
        )
    check_severity(severity)


def check_severity(severity: int) -> None:
    """Refuse a severity that is not an integer in 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise ConfigError(f"dataset.shift_severity must be an integer 1..5, got {severity!r}")
    if not 1 <= int(severity) <= 5:
        raise ConfigError(f"dataset.shift_severity must be in 1..5, got {severity}")


def parse_shift(name: str | None, severity: int, seed: int) -> Shift | None:
    """The :class:`Shift` of the dataset options (``None``/``"none"``: no shift)."""
    if name is None or name == "none":
        return None
    return Shift(str(name), severity, int(seed))


def _rng(shift: Shift, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{shift.name}\0{shift.severity}\0{key}".encode()).digest()
    return np.random.default_rng([int(shift.seed), int.from_bytes(digest[:8], "little")])


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """``image`` (``(H, W, 3)`` uint8) under corruption ``name`` at ``severity`` (uint8)."""
    import torch
    import torchvision.transforms.v2.functional as TF

    check_shift(name, severity)
    c = PARAMETERS[name][int(severity) - 1]
    if name == "jpeg":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=int(c))
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    if name == "pixelate":
        from PIL import Image

        h, w = image.shape[:2]
        small = Image.fromarray(image).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
        return np.asarray(small.resize((w, h), Image.BOX), dtype=np.uint8).copy()
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    if name == "gaussian_noise":
        x = x + torch.from_numpy(rng.normal(0.0, c, size=x.shape).astype(np.float32))
    elif name == "gaussian_blur":
        radius = int(np.ceil(3 * c))
        x = TF.gaussian_blur(x, kernel_size=[2 * radius + 1] * 2, sigma=[float(c)] * 2)
    elif name == "contrast":
        x = TF.adjust_contrast(x, float(c))
    elif name == "grayscale":
        x = TF.adjust_saturation(x, 1.0 - float(c))
    elif name == "brightness":
        # For a fixed hue and saturation RGB is proportional to V = max(R, G, B): adding c to V
        # scales the pixel by (V + c) / V; black pixels (no hue) become grey c.
        v = x.max(dim=0, keepdim=True).values
        new_v = (v + c).clamp(max=1.0)
        x = torch.where(v > 0, x * new_v / v.clamp_min(1e-12), new_v.expand_as(x))
    out = x.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return out.permute(1, 2, 0).numpy().copy()


def _shift_array(X: np.ndarray, shift: Shift) -> np.ndarray:
    """Images ``(n, C, H, W)`` in [0, 1] corrupted (through uint8; C = 1 or 3)."""
    out = np.empty_like(X, dtype=np.float32)
    for i, img in enumerate(X):
        u8 = (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
        rgb = np.repeat(u8, 3, axis=2) if u8.shape[2] == 1 else u8
        key = hashlib.sha256(u8.tobytes()).hexdigest()  # the same image, the same corruption
        res = shift.apply(rgb, key)
        res = res[..., :1] if u8.shape[2] == 1 else res
        out[i] = res.transpose(2, 0, 1).astype(np.float32) / 255.0
    return out


def shift_task(task: Any, shift: Shift) -> Any:
    """``task`` with every target image (target training data and test set) corrupted.

    Image files are corrupted as they are decoded; image arrays in [0, 1] at once (through
    uint8). The source is never touched.
    """
    from dataclasses import replace

    if task.kind != "image":
        raise ConfigError(
            f"dataset.target_shift={shift.name} corrupts photos; this dataset's task is "
            f"{task.kind}: use an image dataset (catsdogs, toy_images)"
        )

    def corrupt_domain(domain: Any) -> Any:
        if domain is None:
            return None
        X = domain.X
        if hasattr(X, "with_shift"):
            return replace(domain, X=X.with_shift(shift))
        if isinstance(X, np.ndarray) and X.ndim == 4 and X.shape[1] in (1, 3):
            return replace(domain, X=_shift_array(X, shift))
        raise ConfigError(f"dataset.target_shift cannot corrupt target data of type "
                          f"{type(X).__name__}")  # fmt: skip

    info = {**task.info, "target_shift": shift.name, "shift_severity": int(shift.severity)}
    return replace(task, target=corrupt_domain(task.target), test=corrupt_domain(task.test),
                   info=info)  # fmt: skip


__all__ = [
    "PARAMETERS",
    "RANDOM_SHIFTS",
    "SHIFTS",
    "Shift",
    "check_severity",
    "check_shift",
    "corrupt",
    "parse_shift",
    "shift_task",
]
