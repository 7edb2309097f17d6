"""``finetune``: parameter transfer in two stages, the frozen-base then fine-tune recipe.

Stage 1, "bottleneck features": run the frozen convolutional base of a pretrained network once
over the training images, store its feature maps (the shared disk cache,
:mod:`tlbench.features`), and train a small top model on them (Flatten, Dense 256 ReLU,
Dropout 0.5, Dense 1 sigmoid; RMSprop, binary cross-entropy, 50 epochs, batch 16). Stage 2,
"fine-tuning": put the trained top model on the base, freeze every block but the last
``train_blocks`` and train with SGD (lr 1e-4, momentum 0.9) and augmentation (shear 0.2,
zoom 0.2, horizontal flip). The defaults are the lecture's
VGG16 recipe for Dogs vs. Cats (``../shared/docs/lecture-transfer-learning-zh.txt``; F. Chollet,
"Building powerful image classification models using very little data", Keras blog, 2016), an
instance of Yosinski, Clune, Bengio, Lipson, "How transferable are features in deep neural
networks?", NIPS 2014. Options beyond it: discriminative learning rates per block (Howard &
Ruder, ACL 2018) and L2-SP, the penalty toward the pretrained weights (Li, Grandvalet, Davoine,
"Explicit inductive bias for transfer learning with convolutional networks", ICML 2018).

Deviations from the lecture:

- Inputs are normalised as the weights expect (ImageNet mean/std; [-1, 1] for EfficientNet-Lite)
  after the ``1/255`` rescale; the lecture feeds ``x/255`` to Keras' VGG16, whose weights expect
  Caffe's mean-subtracted BGR.
- The sigmoid unit is written as logits ``(0, z)`` under a softmax: the same probabilities and
  the same loss as ``Dense(1, sigmoid)`` with binary cross-entropy.
- Images are resized with Pillow's antialiased bilinear filter (Keras' ``load_img``: nearest).
- Augmentation as Keras 1's ``ImageDataGenerator`` (2016): shear angle uniform in
  ``±shear`` radians, zoom factors drawn per axis in ``[1 - zoom, 1 + zoom]``, nearest fill;
  it is applied to the resized image, as there.
- Batch-norm layers of frozen blocks stay in inference mode (VGG16 has none); ``freeze_bn``
  keeps every batch-norm layer in inference mode, the usual choice for batches of 16.
- It trains on the labeled photos it is given: the source images plus any labeled target
  images (on ``catsdogs``: the training photos; the pretrained network is the source
  knowledge). A corrupted target (``dataset.target_shift``) is predicted; of it only the
  labeled photos, if any, are trained on.
- Validation images are never used for selection: each stage trains for its fixed epochs.
  Under the runner's ``selection=source_val|iwv|dev`` the protocol's share of the training
  photos is held out of the one training and scores it (as for the deep methods);
  ``trainer.selection`` may instead hold out part of the training images to pick a step.
- ``tta_hflip`` (off by default; not in the lecture) averages the class probabilities of each
  image and its mirror image at prediction time; the record then also holds every stage's
  accuracy without it (``accuracy_<stage>_noflip``).
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError, DataError
from ...features import FrozenSpec, frozen_features, load_images
from ...registry import register_method
from ...task import Domain, TransferTask
from ..base import TransferMethod, check_fitted
from ..deep import concat_domains

log = logging.getLogger(__name__)

STAGES = ("bottleneck", "both")
TOP_DEFAULTS = {"pool": "flatten", "hidden": 256, "dropout": 0.5, "sigmoid": True}
BOTTLENECK_DEFAULTS = {"optimizer": "rmsprop", "lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0,
                       "epochs": 50, "batch_size": 16, "schedule": "constant"}  # fmt: skip
FINETUNE_DEFAULTS = {"optimizer": "sgd", "lr": 1e-4, "momentum": 0.9, "weight_decay": 0.0,
                     "epochs": 50, "batch_size": 16, "schedule": "constant", "lr_decay": 1.0,
                     "l2sp_alpha": 0.0, "l2sp_beta": 0.0, "freeze_bn": True}  # fmt: skip
AUGMENT_DEFAULTS = {"shear": 0.2, "zoom": 0.2, "hflip": True}


def _options(given: Any, defaults: dict[str, Any], what: str) -> dict[str, Any]:
    given = {} if given is None else dict(given)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; valid: {sorted(defaults)}")
    return {**defaults, **given}


# --------------------------------------------------------------------------- modules


class TopModel(nn.Module):
    """The classifier on a feature map: pool or flatten, Dense-ReLU-Dropout, output layer.

    Parameters
    ----------
    in_shape : tuple of int
        Shape ``(C, H, W)`` of one feature map.
    num_classes : int
        Number of classes.
    pool : {"flatten", "avg"}
        Flatten the map (the lecture) or average it over space.
    hidden : int
        Width of the hidden layer (0: none, a linear classifier).
    dropout : float
        Dropout after the hidden layer.
    sigmoid : bool
        For 2 classes, one sigmoid unit (returned as logits ``(0, z)``); else one logit per class.
    """

    def __init__(self, in_shape: tuple[int, ...], num_classes: int, pool: str = "flatten",
                 hidden: int = 256, dropout: float = 0.5,
                 sigmoid: bool = True) -> None:  # fmt: skip
        super().__init__()
        if pool not in ("flatten", "avg"):
            raise ConfigError(f"top.pool must be flatten or avg, got {pool!r}")
        self.pool = pool
        width = int(np.prod(in_shape)) if pool == "flatten" else int(in_shape[0])
        self.hidden = nn.Linear(width, hidden) if hidden else None
        self.dropout = nn.Dropout(dropout)
        self.binary = bool(sigmoid) and num_classes == 2
        self.out = nn.Linear(hidden or width, 1 if self.binary else num_classes)
        for layer in (self.hidden, self.out):  # Keras' Dense: Glorot-uniform weights, zero bias
            if layer is not None:
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.num_features = hidden or width

    def forward_features(self, fmap: torch.Tensor) -> torch.Tensor:
        """Hidden activations (after dropout) of a batch of feature maps."""
        x = fmap.flatten(1) if self.pool == "flatten" else fmap.mean(dim=(2, 3))
        if self.hidden is not None:
            x = torch.relu(self.hidden(x))
        return self.dropout(x)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        z = self.out(h)
        return torch.cat([torch.zeros_like(z), z], dim=1) if self.binary else z

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.forward_head(self.forward_features(fmap))


class FineTuneNet(nn.Module):
    """A convolutional base (by blocks) with a top model; the first ``n_frozen`` blocks frozen.

    Frozen blocks run without autograd and stay in inference mode whatever ``train()`` is
    called with, so their weights and batch-norm statistics do not move.
    """

    def __init__(self, backbone: nn.Module, top: TopModel, n_frozen: int, input_mean: Any,
                 input_std: Any, freeze_bn: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.backbone = backbone
        self.top = top
        self.blocks = backbone.conv_blocks()  # views of the backbone's modules, not registered
        if not 0 <= n_frozen <= len(self.blocks):
            raise ConfigError(f"cannot freeze {n_frozen} of {len(self.blocks)} blocks")
        self.n_frozen = n_frozen
        self.freeze_bn = freeze_bn
        self.register_buffer("mean", torch.tensor(input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(input_std).view(1, 3, 1, 1), persistent=False)
        backbone.requires_grad_(False)
        for _, block in self.blocks[n_frozen:]:
            block.requires_grad_(True)

    def train(self, mode: bool = True) -> Self:
        """Set training mode; frozen blocks (all batch norms with ``freeze_bn``) stay in eval."""
        super().train(mode)
        for _, block in self.blocks[: self.n_frozen]:
            block.eval()
        if self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output for images ``x`` (RGB in [0, 1])."""
        x = (x - self.mean) / self.std
        with torch.no_grad():
            for _, block in self.blocks[: self.n_frozen]:
                x = block(x)
        for _, block in self.blocks[self.n_frozen :]:
            x = block(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The top model's hidden activations."""
        return self.top.forward_features(self.feature_map(x))

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.top.forward_head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.forward_head(self.forward_features(x))

    def trainable_groups(self, lr_decay: float) -> list[dict[str, Any]]:
        """Parameter groups: the top at lr, the k-th trainable block from the top at lr decay^k."""
        groups = [{"params": list(self.top.parameters()), "lr_mult": 1.0}]
        trainable = self.blocks[self.n_frozen :]
        for k, (_, block) in enumerate(reversed(trainable), start=1):
            params = [p for p in block.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr_mult": float(lr_decay) ** k})
        return groups


class AugmentedImages(torch.utils.data.Dataset):
    """Images (uint8 or float in [0, 1]) served as float tensors, optionally augmented.

    Keras 1's ``ImageDataGenerator(shear_range, zoom_range, horizontal_flip)``: a random shear
    angle in ``±shear`` radians and zoom factors per axis in ``[1 - zoom, 1 + zoom]`` about the
    centre, border pixels repeated (``fill_mode="nearest"``), then a flip with probability 1/2.
    Draws come from torch's global generator, which the trainer seeds.
    """

    def __init__(self, images: torch.Tensor, shear: float = 0.0, zoom: float = 0.0,
                 hflip: bool = False) -> None:  # fmt: skip
        self.images, self.shear, self.zoom, self.hflip = images, shear, zoom, hflip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[int(i)]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        if self.shear or self.zoom:
            s = (torch.rand(()) * 2 - 1) * self.shear
            zx, zy = 1 + (torch.rand(2) * 2 - 1) * self.zoom
            theta = torch.tensor([[zx, -math.sin(s) * zy, 0.0], [0.0, math.cos(s) * zy, 0.0]])
            grid = nn.functional.affine_grid(theta[None], [1, *x.shape], align_corners=False)
            x = nn.functional.grid_sample(x[None], grid, padding_mode="border",
                                          align_corners=False)[0]  # fmt: skip
        if self.hflip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x


# --------------------------------------------------------------------------- the method


@register_method(
    "finetune",
    paper="Yosinski et al., NIPS 2014; Chollet, Keras blog 2016 (bottleneck + fine-tuning)",
)
class FineTune(TransferMethod):
    """Pretrained convolutional base: bottleneck features, then fine-tuning of the last blocks.

    Parameters
    ----------
    stage : {"both", "bottleneck"}, default="both"
        ``bottleneck`` runs stage 1 alone.
    backbone : str, default="vgg16"
        A backbone with convolutional blocks: ``vgg16``, ``efficientnet_lite0``,
        ``cifar_resnet20``/``32``, ``resnet18``/``50``; ``imagenet``: ``vgg16`` when its weights
        are present, else ``efficientnet_lite0`` (:func:`tlbench.backbones.resolve_backbone`).
    pretrained : bool, default=True
        Load pretrained weights (never downloaded; see :func:`tlbench.backbones.weights_file`).
    weights_path : str, optional
        Weights file or folder (default: the torch hub cache / the weights package).
    image_size : int, default=150
        Images are resized to ``image_size x image_size``.
    train_blocks : int, default=1
        Stage 2 trains the last ``train_blocks`` convolutional blocks (VGG16: ``block5``, the
        lecture's ``layers[15:]``); the others stay frozen.
    top : dict
        ``pool`` (flatten | avg), ``hidden`` (256), ``dropout`` (0.5), ``sigmoid`` (true).
    bottleneck : dict
        Stage 1 training: ``optimizer`` (rmsprop), ``lr`` (1e-3), ``momentum``,
        ``weight_decay``, ``epochs`` (50), ``batch_size`` (16), ``schedule`` (constant, the
        lecture's; ``cosine``: a half-cosine decay to 0 over the stage).
    finetune : dict
        Stage 2 training: ``optimizer`` (sgd), ``lr`` (1e-4), ``momentum`` (0.9),
        ``weight_decay``, ``epochs`` (50), ``batch_size`` (16), ``schedule`` (constant),
        ``lr_decay`` (1: one learning rate; k-th trainable block from the top at
        ``lr * lr_decay^k``), ``l2sp_alpha`` and
        ``l2sp_beta`` (L2-SP: ``alpha/2 |w - w0|^2`` on the trainable pretrained weights,
        ``beta/2 |w|^2`` on the top model; 0 disables), ``freeze_bn`` (true).
    augment : dict
        Stage 2 augmentation: ``shear`` (0.2 rad), ``zoom`` (0.2), ``hflip`` (true).
    tta_hflip : bool, default=False
        Predict on each image and its mirror image and average the probabilities.
    cache_dir : str, optional
        Folder of the bottleneck-feature cache (``None``: no cache).
    random_state : int, optional
        Seed of the top model's initialisation.

    Attributes
    ----------
    model_ : FineTuneNet
        The network after the last stage run (stage 1: a base with every block frozen).
    top1_ : TopModel
        The stage 1 top model (a copy; stage 2 trains another copy).
    backbone_ : str
        The backbone used (what ``imagenet`` stood for).
    stage_seconds_ : dict
        Wall time of feature extraction, stage 1 and stage 2.
    cache_hits_ : dict
        Whether each set of bottleneck features came from the cache.
    """

    family: ClassVar[str] = "parameter"
    final_classifier: ClassVar[str] = "network"
    #: trained once per run: under selection=source_val|iwv|dev the runner holds the
    #: protocol's source photos out of that one training and scores it on them
    scores_on_holdout: ClassVar[bool] = True
    supports: ClassVar[frozenset[str]] = frozenset({"image"})

    def __init__(
        self,
        *,
        stage: str = "both",
        backbone: str = "vgg16",
        pretrained: bool = True,
        weights_path: str | None = None,
        image_size: int = 150,
        train_blocks: int = 1,
        top: dict | None = None,
        bottleneck: dict | None = None,
        finetune: dict | None = None,
        augment: dict | None = None,
        tta_hflip: bool = False,
        cache_dir: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.stage = stage
        self.backbone = backbone
        self.pretrained = pretrained
        self.weights_path = weights_path
        self.image_size = image_size
        self.train_blocks = train_blocks
        self.top = top
        self.bottleneck = bottleneck
        self.finetune = finetune
        self.augment = augment
        self.tta_hflip = tta_hflip
        self.cache_dir = cache_dir
        self.random_state = random_state

    # ----------------------------------------------------------------- helpers

    def _images(self, X: Any) -> torch.Tensor:
        """``(n, 3, S, S)`` images: uint8 decoded from files, or float resized from arrays."""
        return load_images(X, int(self.image_size))

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _bottleneck_features(
        self,
        X: Any,
        trainer: Any,
        role: str,
        images: Callable[[], torch.Tensor] | None = None,
        flip: bool = False,
    ) -> np.ndarray:
        """The frozen base's feature maps of ``X`` (the shared cache), float32 ``(n, C, H, W)``.

        ``images`` returns ``X`` decoded (when the caller decodes it anyway); a cache hit
        decodes nothing. ``flip``: of the mirror images. A top model that averages the map
        over space (``top.pool=avg``) reads the pooled features, as ``(n, C, 1, 1)``: the
        entry the deep methods and ``dataset.features`` share, 49 times smaller at 224 px.
        """
        pooled = _options(self.top, TOP_DEFAULTS, "method.top")["pool"] == "avg"
        spec = FrozenSpec(self.backbone_, bool(self.pretrained), self.weights_path,
                          int(self.image_size), None, pooled, self._seed())  # fmt: skip
        t0 = time.perf_counter()
        feats, hit = frozen_features(spec, X, trainer=trainer, cache_dir=self.cache_dir,
                                     images=images, flip=flip)  # fmt: skip
        self.stage_seconds_[f"features_{role}"] = time.perf_counter() - t0
        self.cache_hits_[role] = hit
        return feats[:, :, None, None] if pooled else feats

    def _stage_trainer(self, trainer: Any, opts: dict[str, Any], n: int, sub: str) -> Any:
        if n < int(opts["batch_size"]):
            raise DataError(f"{n} training images but batch_size={opts['batch_size']}")
        t = copy.copy(trainer)
        t.optimizer, t.lr = opts["optimizer"], float(opts["lr"])
        t.momentum, t.weight_decay = float(opts["momentum"]), float(opts["weight_decay"])
        t.batch_size, t.schedule = int(opts["batch_size"]), str(opts["schedule"])
        # Keras' epoch: n // batch_size steps
        t.max_steps = max(1, int(opts["epochs"]) * (n // int(opts["batch_size"])))
        if trainer.output_dir is not None:
            t.output_dir = str(Path(trainer.output_dir) / sub)
        return t

    # ----------------------------------------------------------------- fit / predict

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Run stage 1 (and stage 2 unless ``stage="bottleneck"``) on the labeled target.

        Parameters
        ----------
        task : TransferTask
            Its labeled ``target`` images are the training set.
        trainer : Trainer, optional
            Device, precision, seed and checkpointing; each stage sets its own optimiser,
            learning rate, batch size and steps. ``None``: a CPU trainer.

        Returns
        -------
        self : FineTune
        """
        from ...backbones import create_backbone, resolve_backbone
        from ...trainer import Trainer

        self.check_task(task)
        if self.stage not in STAGES:
            raise ConfigError(f"method.stage must be one of {STAGES}, got {self.stage!r}")
        top_opts = _options(self.top, TOP_DEFAULTS, "method.top")
        opts1 = _options(self.bottleneck, BOTTLENECK_DEFAULTS, "method.bottleneck")
        opts2 = _options(self.finetune, FINETUNE_DEFAULTS, "method.finetune")
        aug = _options(self.augment, AUGMENT_DEFAULTS, "method.augment")
        if trainer is None:
            trainer = Trainer(seed=self._seed(), progress_bar=False)
        self.stage_seconds_: dict[str, float] = {}
        self.cache_hits_: dict[str, bool] = {}
        self.backbone_, why = resolve_backbone(self.backbone, self.weights_path)
        train = task.source  # the labeled photos: the source, plus any labeled target photos
        if task.target.n_labeled:
            train = concat_domains(task.source, task.target.labeled())
        y = np.asarray(train.y)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            backbone = create_backbone(self.backbone_, num_classes=task.num_classes,
                                       in_shape=(3, self.image_size, self.image_size),
                                       pretrained=self.pretrained,
                                       weights_path=self.weights_path)  # fmt: skip
            n_blocks = len(backbone.conv_blocks())
            if not 0 <= int(self.train_blocks) <= n_blocks:
                raise ConfigError(f"train_blocks must be in 0..{n_blocks} for {self.backbone_}")
            backbone.conv_base_only()
            # decoded at most once per fit: by stage 1 on a cache miss, by stage 2 anyway
            train_images = functools.cache(lambda: self._images(train.X))
            feats = self._bottleneck_features(train.X, trainer, "train", train_images)
            top = TopModel(feats.shape[1:], task.num_classes, **top_opts)

        # Stage 1: the top model on the stored feature maps
        t1 = self._stage_trainer(trainer, opts1, len(y), "stage1")
        t0 = time.perf_counter()
        t1.fit(top, Domain(feats, y, name=train.name))
        self.stage_seconds_["bottleneck"] = time.perf_counter() - t0
        self.top1_ = top
        self.trainer1_ = t1
        self.history_ = {"bottleneck": t1.history_}
        self.model_ = FineTuneNet(backbone, top, n_blocks, backbone.input_mean,
                                  backbone.input_std, bool(opts2["freeze_bn"]))  # fmt: skip
        self.trainer_ = t1
        self.stages_ = ["bottleneck"]

        if self.stage == "both":
            self._fine_tune(train, train_images(), y, backbone, opts2, aug, trainer, n_blocks)

        self.classes_ = np.arange(task.num_classes)
        self.device_ = str(self.trainer_.device_)
        self.precision_ = self.trainer_.precision
        self.diagnostics_ = {
            # the live dicts: prediction adds its own feature extraction to them
            "stage_seconds": self.stage_seconds_,
            "feature_cache_hits": self.cache_hits_,
            "feature_shape": list(feats.shape[1:]),
            "stages": list(self.stages_),
            "backbone": {"name": self.backbone_, "why": why},
            "trainable_blocks": [n for n, _ in self.model_.blocks[self.model_.n_frozen :]],
        }
        # Trains on every labeled image: a held-out score exists only when the trainer holds
        # data out itself (trainer.selection=source_val); never refit on a leaky split.
        score = self.trainer_.history_.get("eval_score")
        self.selection_score_ = (
            {"name": "source_val", "score": max(score)}
            if self.trainer_.selection == "source_val" and score
            else {"name": None, "note": "finetune trains on all labeled images; set "
                  "trainer.selection=source_val to score it on a held-out part"}
        )  # fmt: skip
        return self

    def _fine_tune(self, train: Domain, images: torch.Tensor, y: np.ndarray,
                   backbone: nn.Module, opts: dict[str, Any], aug: dict[str, Any],
                   trainer: Any, n_blocks: int) -> None:  # fmt: skip
        # stage 2 trains copies: the stage 1 base and top keep predicting for stage 1
        top = copy.deepcopy(self.top1_)
        net = FineTuneNet(copy.deepcopy(backbone), top, n_blocks - int(self.train_blocks),
                          backbone.input_mean, backbone.input_std,
                          bool(opts["freeze_bn"]))  # fmt: skip
        data = AugmentedImages(images, float(aug["shear"]), float(aug["zoom"]), bool(aug["hflip"]))
        t2 = self._stage_trainer(trainer, opts, len(y), "stage2")
        groups = net.trainable_groups(float(opts["lr_decay"]))
        alpha, beta = float(opts["l2sp_alpha"]), float(opts["l2sp_beta"])
        regularizer = None
        if alpha or beta:
            pretrained = [p for g in groups[1:] for p in g["params"]]
            start = [p.detach().clone() for p in pretrained]
            top_weights = [p for n, p in top.named_parameters() if n.endswith("weight")]

            def regularizer() -> torch.Tensor:
                sp = sum(
                    ((p - p0.to(p.device)) ** 2).sum()
                    for p, p0 in zip(pretrained, start, strict=True)
                )
                new = sum((p**2).sum() for p in top_weights)
                return 0.5 * alpha * sp + 0.5 * beta * new

        t0 = time.perf_counter()
        t2.fit(net, Domain(data, y, name=train.name), params=groups, regularizer=regularizer)
        self.stage_seconds_["finetune"] = time.perf_counter() - t0
        self.history_["finetune"] = t2.history_
        self.model_, self.trainer_ = net, t2
        self.stages_.append("finetune")

    def _stage_logits(self, X: Any, stage: str, flip: bool,
                      images: Callable[[], torch.Tensor] | None = None) -> np.ndarray:  # fmt: skip
        """Logits of one stage on ``X`` (``flip``: on its mirror images).

        ``images`` decodes ``X`` once for every call that shares it.
        """
        images = images or (lambda: self._images(X))
        if stage == "bottleneck":
            role = "predict_flip" if flip else "predict"
            feats = self._bottleneck_features(X, self.trainer1_, role, images, flip)
            return self.trainer1_.predict_logits(self.top1_, feats, batch_size=64)
        x = images()
        images_ = AugmentedImages(x.flip(-1) if flip else x)
        return self.trainer_.predict_logits(self.model_, images_, batch_size=64)

    def _predict_logits(self, X: Any, stage: str) -> np.ndarray:
        check_fitted(self, "model_")
        images = functools.cache(lambda: self._images(X))
        logits = self._stage_logits(X, stage, False, images)
        if not self.tta_hflip:
            return logits
        return _mean_probability_logits(logits, self._stage_logits(X, stage, True, images))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the last stage run."""
        check_fitted(self, "model_")
        logits = torch.from_numpy(self._predict_logits(X, self.stages_[-1])).double()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Classes predicted by the last stage run."""
        check_fitted(self, "model_")
        return self._predict_logits(X, self.stages_[-1]).argmax(axis=1)

    def intermediate_predictions(self, X: Any) -> dict[str, np.ndarray]:
        """Predictions of the earlier stages (``{"bottleneck": ...}`` after fine-tuning).

        With ``tta_hflip``, also every stage's predictions without the mirror images
        (``"<stage>_noflip"``).

        The runner records their accuracies as ``accuracy_<stage>`` next to ``accuracy``.
        """
        check_fitted(self, "model_")
        images = functools.cache(lambda: self._images(X))
        out = {}
        for s in self.stages_:
            plain = self._stage_logits(X, s, False, images)
            if self.tta_hflip:  # what each stage scores without the mirror images
                out[f"{s}_noflip"] = plain.argmax(axis=1)
            if s != self.stages_[-1]:
                if self.tta_hflip:
                    plain = _mean_probability_logits(plain, self._stage_logits(X, s, True, images))
                out[s] = plain.argmax(axis=1)
        return out


def _mean_probability_logits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log of the mean of two softmax probabilities: its softmax gives that mean back."""
    both = torch.from_numpy(np.stack([a, b])).double()
    return torch.softmax(both, dim=-1).mean(0).log().numpy()
