"""The deep-method helper: :class:`DeepMethod` and the network it trains, :class:`DeepNet`.

A deep method is a backbone (:func:`tlbench.backbones.create_backbone`), an optional bottleneck
(the adaptation layer of DDC, the 256-d bottleneck of DAN implementations) and a linear
classifier, trained by :class:`tlbench.trainer.Trainer` on the labeled source (plus any labeled
target samples) with an optional transfer loss on paired source/target batches. A subclass
writes :meth:`DeepMethod.transfer_loss` and nothing else; ``source_only_deep`` writes none.

On images a pretrained backbone can be frozen below its last ``train_blocks`` convolutional
blocks: the frozen part's outputs are computed once per set of images and read from the
shared cache (:mod:`tlbench.features`), so training runs only the blocks above, the
bottleneck and the classifier (``train_blocks=0``: the pooled features of the whole base, the
lecture's "bottleneck features", with the method's adaptation layers on top). Batch-norm
layers of a pretrained backbone then keep their ImageNet statistics (they do not see either
domain's batches), which keeps a source-only network and an adapted one the same network.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..errors import ConfigError
from ..task import UNLABELED, Domain, TransferTask
from .base import TransferMethod, check_fitted

log = logging.getLogger(__name__)


def _top_share(labels: np.ndarray) -> float:
    """Share of the most frequent value among ``labels`` (labeled ones only)."""
    labels = np.asarray(labels)
    labels = labels[labels != UNLABELED]
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


#: ``weight_init`` choices of :class:`DeepMethod`
WEIGHT_INITS = ("default", "xavier")


def xavier_init(*modules: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every convolution and linear layer in them."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


class DeepNet(nn.Module):
    """Backbone -> bottleneck (Linear-ReLU-Dropout, optional) -> linear classifier.

    ``forward_layers`` names every output: ``backbone`` (the backbone's features),
    ``bottleneck`` (when present), ``features`` (what the classifier reads) and ``logits``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        bottleneck_dim: int = 256,
        dropout: float = 0.0,
        input_shape: tuple[int, ...] | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        # pretrained weights expect their own input statistics (ImageNet mean/std, [-1, 1])
        self.normalize = normalize
        if normalize:
            self.register_buffer("mean", torch.tensor(backbone.input_mean).view(1, 3, 1, 1),
                                 persistent=False)  # fmt: skip
            self.register_buffer("std", torch.tensor(backbone.input_std).view(1, 3, 1, 1),
                                 persistent=False)  # fmt: skip
        if hasattr(backbone, "drop_head"):
            backbone.drop_head()  # the classifier below replaces it
        self.backbone = backbone
        width = backbone.num_features
        if bottleneck_dim:
            self.bottleneck = nn.Sequential(
                nn.Linear(width, bottleneck_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)
            )
            width = bottleneck_dim
        else:
            self.bottleneck = None
        self.num_features = width
        self.classifier = nn.Linear(width, num_classes)

    def _reshape(self, x: torch.Tensor) -> torch.Tensor:
        # flat rows (e.g. the 256 pixels of the JDA digits) become images for a conv backbone
        x = x if self.input_shape is None else x.reshape(len(x), *self.input_shape)
        return (x - self.mean) / self.std if self.normalize else x

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names ``forward_layers`` returns."""
        mid = ("bottleneck",) if self.bottleneck is not None else ()
        return ("backbone", *mid, "features", "logits")

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every named output for the batch ``x``."""
        out = {"backbone": self.backbone.forward_features(self._reshape(x))}
        f = out["backbone"]
        if self.bottleneck is not None:
            f = out["bottleneck"] = self.bottleneck(f)
        out["features"] = f
        out["logits"] = self.classifier(f)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input."""
        f = self.backbone.forward_features(self._reshape(x))
        return f if self.bottleneck is None else self.bottleneck(f)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.forward_head(self.forward_features(x))


def concat_domains(a: Domain, b: Domain) -> Domain:
    """Source plus the labeled target samples, as one labeled domain (weight 1 for the target).

    ``domain_index`` keeps each row's origin: the source's own indices (0 for one source),
    then ``len(a's domain names)`` for the target rows, named ``b.name`` in ``domain_names``.
    """
    if isinstance(a.X, np.ndarray) and isinstance(b.X, np.ndarray):
        X = np.concatenate([a.X, b.X])
    elif sp.issparse(a.X) and sp.issparse(b.X):
        X = sp.vstack([a.X, b.X]).tocsr()
    elif hasattr(a.X, "concat") and type(a.X) is type(b.X):  # ImageFiles keep their file list
        X = a.X.concat(b.X)
    else:
        X = torch.utils.data.ConcatDataset([a.X, b.X])
    w = None
    if a.weight is not None or b.weight is not None:
        wa = np.ones(len(a)) if a.weight is None else np.asarray(a.weight, dtype=float)
        wb = np.ones(len(b)) if b.weight is None else np.asarray(b.weight, dtype=float)
        w = np.concatenate([wa, wb])
    names = a.domain_names or (a.name,)
    own = np.zeros(len(a), dtype=np.int64) if a.domain_index is None else a.domain_index
    index = np.concatenate([own, np.full(len(b), len(names), dtype=np.int64)])
    return Domain(X=X, y=np.concatenate([a.y, b.y]), weight=w, name=a.name,
                  domain_index=index, domain_names=(*names, b.name or "target"))  # fmt: skip


def _sample_shape(X: Any) -> tuple[int, ...]:
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return tuple(X.shape[1:])
    first = X[0]
    first = first[0] if isinstance(first, tuple | list) else first
    return tuple(torch.as_tensor(first).shape)


class TailBackbone(nn.Module):
    """The trainable blocks of a pretrained backbone above its frozen, cached part, then a pool.

    With no block left (``train_blocks=0``) the input is the pooled feature vector and the tail
    is the identity. Batch-norm layers stay in inference mode: they keep the pretrained
    statistics whichever domains a batch holds.
    """

    def __init__(self, blocks: list[nn.Module], in_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.body = nn.Sequential(*blocks)
        with torch.no_grad():
            out = self._pool(self.body.eval()(torch.zeros(1, *in_shape)))
        self.num_features = int(out.shape[1])

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if x.dim() == 4 else x

    def train(self, mode: bool = True) -> TailBackbone:
        """Set training mode; batch-norm layers stay in inference mode."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled output of the trainable blocks."""
        return self._pool(self.body(x))


class DeepMethod(TransferMethod):
    """Base class of the deep methods: the subclass writes :meth:`transfer_loss` (optional).

    Parameters
    ----------
    backbone : str, default="auto"
        A :data:`tlbench.backbones.BACKBONES` name; ``auto``: ``mlp`` for tabular tasks,
        ``small_cnn`` for images; ``imagenet``: the lecture's ``vgg16`` when its weights are
        present, else ``efficientnet_lite0`` (:func:`tlbench.backbones.resolve_backbone`).
    pretrained : bool, default=False
        Start from pretrained backbone weights.
    weights_path : str, optional
        Where the pretrained weights are (file or folder); default: the torch hub cache.
    bottleneck_dim : int, default=256
        Width of the bottleneck between backbone and classifier (0: none).
    dropout : float, default=0.0
        Dropout after the bottleneck.
    backbone_lr_mult : float, default=1.0
        Learning-rate multiplier of the backbone (0.1 is usual for a pretrained one); 0 freezes it.
    hidden : list of int, default=(256,)
        Hidden widths of the ``mlp`` backbone.
    input_shape : list of int, optional
        Reshape each sample to this shape before the backbone, e.g. ``[1, 16, 16]`` to run
        ``lenet`` on the 256 flat pixels of the JDA digits.
    image_size : int or "native", optional
        Resize images to ``image_size x image_size``; ``native``: the size the pretrained
        backbone was trained at (:data:`tlbench.backbones.NATIVE_SIZE`); ``None``: as the
        dataset serves them.
    train_blocks : int, optional
        Train only the last ``train_blocks`` convolutional blocks of a backbone that has
        blocks; the frozen part below runs once per set of images and is cached (``0``: the
        whole base frozen, its pooled features cached). ``None``: the whole network trains.
    cache_dir : str, optional
        Folder of the frozen-feature cache (``None``: computed in memory, not stored).
    weight_init : {"default", "xavier"}, default="default"
        ``default``: torch's initialisation of each layer; ``xavier``: Glorot-uniform weights
        and zero biases on every convolution and linear layer not loaded pretrained (the
        default of TF-slim, in which e.g. ADDA's released LeNet was written).
    random_state : int, optional
        Seed of the weight initialisation (the trainer's seed orders the batches).

    Attributes
    ----------
    model_ : DeepNet
        The trained network (on the trainer's device).
    trainer_ : Trainer
        The trainer that trained it (used by ``predict``).
    history_ : dict of str to list of float
        The training history.
    classes_ : ndarray
        ``0 .. num_classes - 1``.
    device_, precision_ : str
        Where and how it was trained (for the result record).
    network_ : dict
        The backbone used and why, its input size, the trained blocks and the cache hits.
    diagnostics_ : dict
        Final losses, steps, the network, and the source-target MMD² of ``features`` before
        and after.
    """

    family: ClassVar[str] = "feature"
    final_classifier: ClassVar[str] = "network"
    supports: ClassVar[frozenset[str]] = frozenset({"tabular", "image"})
    uses_target: ClassVar[bool] = True
    #: trained once per run: the runner holds the selection's source samples out of that fit
    scores_on_holdout: ClassVar[bool] = True

    def __init__(
        self,
        *,
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
        self.backbone = backbone
        self.pretrained = pretrained
        self.weights_path = weights_path
        self.bottleneck_dim = bottleneck_dim
        self.dropout = dropout
        self.backbone_lr_mult = backbone_lr_mult
        self.hidden = hidden
        self.input_shape = input_shape
        self.image_size = image_size
        self.train_blocks = train_blocks
        self.cache_dir = cache_dir
        self.weight_init = weight_init
        self.random_state = random_state

    # ----------------------------------------------------------------- hooks

    def transfer_loss(self, source: Any, target: Any) -> Any:
        """The transfer term added to the classification loss (``None``: none)."""
        return None

    def _check_common(self) -> None:
        """The shared hyperparameters' ranges, one line each, before anything is built."""

        def number(x: Any) -> bool:
            return isinstance(x, int | float) and not isinstance(x, bool)

        if not (number(self.backbone_lr_mult) and self.backbone_lr_mult >= 0):
            raise ConfigError(f"backbone_lr_mult must be >= 0, got {self.backbone_lr_mult!r}")
        if not (isinstance(self.bottleneck_dim, int) and self.bottleneck_dim >= 0):
            raise ConfigError(
                f"bottleneck_dim must be an integer >= 0, got {self.bottleneck_dim!r}"
            )
        if not (number(self.dropout) and 0 <= self.dropout < 1):
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        hidden = list(self.hidden or [])
        if not all(isinstance(h, int) and h >= 1 for h in hidden):
            raise ConfigError(f"hidden must hold integers >= 1, got {hidden!r}")
        if self.weight_init not in WEIGHT_INITS:
            raise ConfigError(
                f"weight_init must be one of {', '.join(WEIGHT_INITS)}, got {self.weight_init!r}"
            )

    def forwards_target(self) -> bool:
        """Whether each step's unlabeled target batch goes through the train-mode forward.

        True for every method with a transfer loss (it reads the target's outputs); the
        baseline's option (``source_only_deep.forward_target``).
        """
        return self.uses_target

    def _check_params(self, model: DeepNet) -> None:
        """Validate method-specific hyperparameters once the layer names are known."""

    def _wrap_model(self, model: DeepNet, task: TransferTask) -> nn.Module:
        """The module the trainer trains: the network, or the network with its adversaries.

        A method with a domain classifier attaches it here (as a submodule, so checkpoints
        and the selected weights hold it); ADDA returns its source/target pair.
        """
        return model

    def updates(self, model: nn.Module, groups: list[dict[str, Any]]) -> list[Any] | None:
        """The trainer's :class:`~tlbench.trainer.Update` list (``None``: one optimiser).

        ``groups`` are the network's parameter groups (backbone with its ``lr_mult``, the
        rest); a method with several players or phases returns one update per optimiser.
        """
        return None

    def _after_fit(self, model: nn.Module) -> None:
        """Once training ends, before the diagnostics (ADDA switches to its target encoder)."""

    # ----------------------------------------------------------------- the network

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _network(self, task: TransferTask) -> dict[str, Any]:
        """Which backbone, input size and frozen part this fit uses (validated)."""
        from ..backbones import NATIVE_SIZE, resolve_backbone

        name, why = self.backbone, "as configured"
        if name == "auto":
            name = "mlp" if task.kind == "tabular" else "small_cnn"
            why = f"auto: the default for {task.kind} tasks"
        else:
            name, why = resolve_backbone(name, self.weights_path)
        size = self.image_size
        if size is not None and task.kind != "image":
            size = None  # a tabular task has no images to resize
        if size == "native":
            if name not in NATIVE_SIZE:
                raise ConfigError(f"method.image_size=native: backbone {name!r} has no "
                                  "native input size; give a number")  # fmt: skip
            size = NATIVE_SIZE[name]
        elif size is not None and (isinstance(size, bool) or int(size) < 8):
            raise ConfigError(f"method.image_size must be >= 8, 'native' or null; got {size!r}")
        tb = self.train_blocks
        if tb is not None and (isinstance(tb, bool) or int(tb) < 0):
            raise ConfigError(f"method.train_blocks must be >= 0 or null, got {tb!r}")
        if tb is not None and task.kind != "image":
            raise ConfigError("method.train_blocks freezes the blocks of an image backbone; "
                              f"this task is {task.kind}")  # fmt: skip
        return {"backbone": name, "requested": self.backbone, "why": why,
                "pretrained": bool(self.pretrained),
                "image_size": None if size is None else int(size),
                "train_blocks": None if tb is None else int(tb)}  # fmt: skip

    def _frozen_spec(self) -> Any:
        """The frozen part's :class:`~tlbench.features.FrozenSpec` (``None``: nothing frozen)."""
        from ..features import FrozenSpec

        net = self.network_
        if net["train_blocks"] is None:
            return None
        whole = net["train_blocks"] == 0  # the pooled base: the entry dataset.features reads
        return FrozenSpec(net["backbone"], net["pretrained"], self.weights_path,
                          net["image_size"], None if whole else net["blocks"] - net["train_blocks"],
                          whole, self._seed())  # fmt: skip

    def _inputs(self, X: Any, role: str | None = None) -> Any:
        """``X`` as the trained network reads it: the frozen part's cached outputs, or resized."""
        from ..features import frozen_features, load_images

        net = self.network_
        if net["train_blocks"] is not None:
            feats, hit = frozen_features(self._frozen_spec(), X, trainer=self.trainer_,
                                         cache_dir=self.cache_dir)  # fmt: skip
            if role is not None:
                net["cache_hits"][role] = hit
            return feats
        size = net["image_size"]
        if size is None:
            return X
        return X.with_size(size) if hasattr(X, "with_size") else load_images(X, size).numpy()

    def _trainable_tail(self) -> list[nn.Module] | None:
        """Copies of the last ``train_blocks`` pretrained blocks, to train (else ``None``).

        They come from the process's frozen base (:func:`tlbench.features.frozen_base`), the
        network that makes the pooled features, so no second copy of the weights is loaded.
        """
        import copy

        from ..features import FrozenSpec, frozen_base

        net = self.network_
        if net["train_blocks"] is None:
            return None
        if net["image_size"] is None:
            raise ConfigError("method.train_blocks needs method.image_size (a number or native)")
        spec = FrozenSpec(net["backbone"], net["pretrained"], self.weights_path,
                          net["image_size"], None, True, self._seed())  # fmt: skip
        blocks = list(frozen_base(spec).body)
        if net["train_blocks"] > len(blocks):
            raise ConfigError(f"method.train_blocks={net['train_blocks']}: {net['backbone']} has "
                              f"{len(blocks)} convolutional blocks")  # fmt: skip
        net["blocks"] = len(blocks)
        tail = [copy.deepcopy(b) for b in blocks[len(blocks) - net["train_blocks"] :]]
        for block in tail:
            block.requires_grad_(True)
        return tail

    def build_model(self, task: TransferTask, sample: Any = None,
                    tail: list[nn.Module] | None = None) -> DeepNet:  # fmt: skip
        """The untrained network for ``task`` (seeded by ``random_state``).

        ``sample`` is the training input as the network reads it (default: the task's
        source); ``tail``, the pretrained blocks it trains above a frozen, cached part.
        """
        from ..backbones import create_backbone

        if not hasattr(self, "network_"):
            self.network_ = self._network(task)
        net = self.network_
        name = net["backbone"]
        kwargs = {"hidden": tuple(self.hidden)} if name == "mlp" else {}
        shape = _sample_shape(task.source.X if sample is None else sample)
        if tail is not None:
            model = DeepNet(TailBackbone(tail, shape), task.num_classes,
                            int(self.bottleneck_dim), self.dropout)  # fmt: skip
            return self._init_weights(model, backbone=False)  # the tail is pretrained
        if self.input_shape is not None:
            size = int(np.prod(self.input_shape))
            if size != int(np.prod(shape)):
                raise ConfigError(
                    f"input_shape {list(self.input_shape)} holds {size} values; the samples "
                    f"have shape {shape}"
                )
            shape = tuple(self.input_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            backbone = create_backbone(
                name,
                num_classes=task.num_classes,
                in_shape=shape,
                pretrained=self.pretrained,
                weights_path=self.weights_path,
                **kwargs,
            )
            normalize = bool(self.pretrained) and len(shape) == 3
            model = DeepNet(backbone, task.num_classes, int(self.bottleneck_dim), self.dropout,
                            None if self.input_shape is None else shape,
                            normalize)  # fmt: skip
            return self._init_weights(model, backbone=not self.pretrained)

    def _init_weights(self, model: DeepNet, backbone: bool) -> DeepNet:
        """Apply ``weight_init`` to the new layers (and to the backbone if ``backbone``)."""
        if self.weight_init == "xavier":
            fresh = [model.classifier] + ([model.bottleneck] if model.bottleneck else [])
            xavier_init(*fresh, *([model.backbone] if backbone else []))
        return model

    # ----------------------------------------------------------------- fit / predict

    def fit(self, task: TransferTask, trainer: Any | None = None) -> Self:
        """Train the network on ``task`` with ``trainer``.

        Parameters
        ----------
        task : TransferTask
            Labeled source, target training data (its labeled samples join the source).
        trainer : Trainer, optional
            The configured trainer; ``None``: ``Trainer()``, the command line's defaults
            (1000 SGD steps, batch 32, the ``dan`` schedule) on the CPU.

        Returns
        -------
        self : DeepMethod
        """
        from ..kernels import mmd2_diagnostic
        from ..trainer import Trainer

        self.check_task(task)
        self._check_common()
        if trainer is None:  # the command line's defaults (the runner passes the configured one)
            trainer = Trainer(seed=self._seed(), progress_bar=False)
        self.network_ = self._network(task)
        self.network_["cache_hits"] = {}
        tail = self._trainable_tail()
        self.trainer_ = trainer
        source = _replace_x(task.source, self._inputs(task.source.X, "source"))
        target = _replace_x(task.target, self._inputs(task.target.X, "target"))
        net = self.build_model(task, source.X, tail)
        self._check_params(net)
        labeled = source
        target_labeled = target.labeled()
        # the labeled target rows' Batch.domain value (None: no labeled target samples)
        self.target_domain_index_ = None
        if len(target_labeled):
            labeled = concat_domains(source, target_labeled)
            self.target_domain_index_ = len(labeled.domain_names) - 1
        unlabeled = target.unlabeled() if self.forwards_target() else None

        groups = [{"params": list(net.backbone.parameters()), "lr_mult": self.backbone_lr_mult}]
        groups.append({"params": [p for n, p in net.named_parameters()
                                  if not n.startswith("backbone.")]})  # fmt: skip
        if self.backbone_lr_mult == 0 or not groups[0]["params"]:  # frozen or nothing to train
            for p in net.backbone.parameters():
                p.requires_grad_(False)
            groups = groups[1:]
        model = self._wrap_model(net, task)
        if model is net:  # attached adversaries join the network's (non-backbone) group
            known = {id(p) for g in groups for p in g["params"]}
            groups[-1]["params"] += [p for p in model.parameters() if id(p) not in known]

        src_sub, tgt_sub = _subsample(source, 500, 0), _subsample(target, 500, 1)
        feats = trainer.forward_layers(model, src_sub.X, ["features"])["features"]
        feats_t = trainer.forward_layers(model, tgt_sub.X, ["features"])["features"]
        mmd_before = mmd2_diagnostic(feats, feats_t)

        updates = self.updates(model, groups)
        if updates is None:
            extra = self.transfer_loss if self.uses_target else None
            history = trainer.fit(model, labeled, unlabeled, extra_loss=extra, params=groups)
        else:
            history = trainer.fit(model, labeled, unlabeled, updates=updates)
        self._after_fit(model)

        out = trainer.forward_layers(model, src_sub.X, ["features", "logits"])
        feats = out["features"]
        feats_t = trainer.forward_layers(model, tgt_sub.X, ["features"])["features"]
        self.model_ = model
        self.history_ = history
        self.classes_ = np.arange(task.num_classes)
        self.device_ = str(trainer.device_)
        self.precision_ = trainer.precision
        diag: dict[str, Any] = {
            "network": self.network_,
            "steps": int(trainer.max_steps),
            "selected_step": trainer.selected_step_,
            "resumed_from_step": trainer.resumed_from_,
            "target_in_forward": self.forwards_target(),
            "mmd2_features_before": float(mmd_before),
            "mmd2_features_after": float(mmd2_diagnostic(feats, feats_t)),
            # share of the (labeled) source samples given the most frequent predicted class
            "source_top_class_share": _top_share(out["logits"].argmax(1)),
        }
        if diag["source_top_class_share"] > max(0.99, _top_share(src_sub.y)):
            # training diverged to a constant classifier (e.g. a transfer loss that drove the
            # features to a degenerate solution): a number to distrust, so say it
            log.warning("%s predicts one class for %.0f%% of the source samples: training "
                        "collapsed; lower the learning rate or the transfer weight",
                        type(self).__name__, 100 * diag["source_top_class_share"])  # fmt: skip
        for key in ("loss", "cls_loss", "transfer_loss"):
            if history.get(key):
                diag[f"final_{key}"] = history[key][-1]
        self.diagnostics_ = diag
        # The trainer already held data out to choose a checkpoint: the runner reuses that
        # score for model selection instead of training a second time.
        self.selection_score_ = None
        if trainer.selection != "last" and history.get("eval_score"):
            name = {"source_val": "source_val", "target_entropy": "entropy"}[trainer.selection]
            self.selection_score_ = {"name": name, "score": max(history["eval_score"])}
        return self

    def _layer(self, X: Any, name: str) -> np.ndarray:
        check_fitted(self, "model_")
        return self.trainer_.forward_layers(self.model_, self._inputs(X), [name])[name]

    def embed(self, X: Any) -> np.ndarray:
        """The backbone's features of ``X`` (before any adaptation layer).

        With a frozen, cached base these are the pretrained features themselves: what the
        ``iwv`` and ``dev`` selection protocols estimate density ratios on for images.
        """
        return self._layer(X, "backbone")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the logits (float64, rows sum to 1)."""
        logits = torch.from_numpy(self._layer(X, "logits")).double()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return self._layer(X, "logits").argmax(axis=1)


def _replace_x(domain: Domain, X: Any) -> Domain:
    return domain if X is domain.X else Domain(X, domain.y, domain.weight, domain.name)


def _subsample(domain: Domain, n: int, seed: int) -> Domain:
    if len(domain) <= n:
        return domain
    idx = np.sort(np.random.default_rng(seed).choice(len(domain), n, replace=False))
    return domain.subset(idx)


def check_layers(layers: list[str] | tuple[str, ...], model: DeepNet, what: str) -> None:
    """Refuse a layer name the network does not have, naming the ones it has."""
    unknown = [name for name in layers if name not in model.layer_names]
    if not layers or unknown:
        raise ConfigError(
            f"{what}: unknown layer(s) {unknown or layers}; this network has "
            f"{', '.join(model.layer_names)}"
        )


__all__ = ["UNLABELED", "DeepMethod", "DeepNet", "TailBackbone", "check_layers", "concat_domains"]
