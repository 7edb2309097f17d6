"""Parameter transfer: the catsdogs layout, prepare, the feature cache and the finetune method."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo as _image
from conftest import photo_layout as _layout
from hydra import compose, initialize_config_dir

from tlbench import ConfigError, DataError, MissingDataError
from tlbench.backbones import create_backbone
from tlbench.datasets.catsdogs import catsdogs
from tlbench.datasets.images import ImageFiles
from tlbench.features import cache_key, cached
from tlbench.methods.parameter.finetune import AugmentedImages, FineTune, FineTuneNet, TopModel
from tlbench.prepare import main as prepare_main
from tlbench.prepare import prepare_catsdogs
from tlbench.runner import run
from tlbench.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_layout(tmp_path) -> Path:
    return _layout(tmp_path / "data" / "dogs_vs_cats_small")


def _quick(**kw) -> FineTune:
    params = dict(
        backbone="cifar_resnet20",
        pretrained=False,
        image_size=32,
        top={"hidden": 16},
        bottleneck={"epochs": 3, "batch_size": 8},
        finetune={"epochs": 1, "batch_size": 8},
        cache_dir=None,
        random_state=0,
    )
    params.update(kw)
    return FineTune(**params)


# --------------------------------------------------------------------------- data


def test_catsdogs_reads_the_layout_and_converts_modes(small_layout):
    d = small_layout / "train" / "cats"
    _image(d / "cat.100.jpg", 0, np.random.default_rng(1), mode="L")  # grey
    _image(d / "cat.101.jpg", 0, np.random.default_rng(2), mode="CMYK")
    (d / "notes.txt").write_text("not an image")
    task = catsdogs(data_dir=small_layout.parent, image_size=20)
    assert task.kind == "image" and task.num_classes == 2
    assert task.info["classes"] == ["cats", "dogs"]
    assert len(task.source) == 26 and len(task.test) == 12  # the txt file is ignored
    x = task.source.X[0]
    assert x.shape == (3, 20, 20) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    grey = task.source.X.paths.index(d / "cat.100.jpg")
    assert task.source.X[grey].shape == (3, 20, 20)
    sub = task.source.subset(np.array([0, 14]))  # 14 cats, then dogs
    assert isinstance(sub.X, ImageFiles) and list(sub.y) == [0, 1]


def test_catsdogs_bad_layouts_are_clear_errors(tmp_path, small_layout):
    with pytest.raises(MissingDataError, match="tlbench.prepare"):
        catsdogs(data_dir=tmp_path / "nowhere")
    for f in (small_layout / "validation" / "dogs").iterdir():
        f.unlink()
    with pytest.raises(MissingDataError, match="holds no image files"):
        catsdogs(data_dir=small_layout.parent)
    (small_layout / "validation" / "dogs").rmdir()
    with pytest.raises(MissingDataError, match="missing \\['dogs'\\]"):
        catsdogs(data_dir=small_layout.parent)


def test_a_corrupt_image_names_the_file(small_layout):
    bad = small_layout / "train" / "dogs" / "dog.3.jpg"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    task = catsdogs(data_dir=small_layout.parent)
    i = task.source.X.paths.index(bad)
    with pytest.raises(DataError, match="dog.3.jpg"):
        task.source.X[i]


def test_prepare_makes_the_lecture_split_and_skips_corrupt_files(tmp_path):
    kaggle = tmp_path / "kaggle_train"
    kaggle.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        _image(kaggle / f"cat.{i}.jpg", 0, rng)
        _image(kaggle / f"dog.{i}.jpg", 1, rng)
    (kaggle / "cat.2.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    summary = prepare_catsdogs(kaggle, out, train_per_class=4, val_per_class=2)
    assert summary["skipped"] == ["cat.2.jpg"]
    cats = sorted(p.name for p in (out / "train" / "cats").iterdir())
    assert cats == ["cat.0.jpg", "cat.1.jpg", "cat.3.jpg", "cat.4.jpg"]  # the next id fills in
    assert sorted(p.name for p in (out / "validation" / "cats").iterdir()) == [
        "cat.5.jpg",
        "cat.6.jpg",
    ]
    assert len(list((out / "train" / "dogs").iterdir())) == 4
    task = catsdogs(data_dir=tmp_path, folder="out")
    assert len(task.source) == 8 and len(task.test) == 4
    # too few readable images, and an existing output folder: one-line errors, exit code 2
    assert prepare_main(["catsdogs", "--kaggle", str(kaggle), str(tmp_path / "o2"),
                         "--train-per-class", "6"]) == 2  # fmt: skip
    assert prepare_main(["catsdogs", "--kaggle", str(kaggle), str(out)]) == 2


# --------------------------------------------------------------------------- cache


def test_cache_is_reused_and_keyed_by_transform_and_files(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return torch.ones(3, 2)

    parts = {"backbone": "b", "transform": {"size": 8}, "files": "abc"}
    _, hit = cached(parts, compute, tmp_path, 3)
    assert not hit
    feats, hit = cached(parts, compute, tmp_path, 3)
    assert hit and len(calls) == 1 and torch.equal(feats, torch.ones(3, 2))
    for changed in ({**parts, "transform": {"size": 9}}, {**parts, "files": "abd"}):
        assert cache_key(changed) != cache_key(parts)
        assert not cached(changed, compute, tmp_path, 3)[1]
    # a corrupt entry and a foreign entry are recomputed, never trusted
    path = tmp_path / f"{cache_key(parts)}.pt"
    path.write_bytes(b"garbage")
    assert not cached(parts, compute, tmp_path, 3)[1]
    torch.save({"key": "other", "features": torch.zeros(3, 2)}, path)
    feats, hit = cached(parts, compute, tmp_path, 3)
    assert not hit and torch.equal(feats, torch.ones(3, 2))
    assert cached(parts, compute, tmp_path, 3)[1]


def test_file_checksum_follows_the_file_list(small_layout):
    task = catsdogs(data_dir=small_layout.parent)
    files = task.source.X
    assert files.checksum() == ImageFiles(files.paths, files.labels, 99, files.root).checksum()
    assert files.checksum() != files.subset(np.arange(len(files) - 1)).checksum()


def test_method_reuses_cached_features(small_layout, tmp_path):
    task = catsdogs(data_dir=small_layout.parent).without_test()
    a = _quick(stage="bottleneck", cache_dir=str(tmp_path / "c")).fit(task)
    b = _quick(stage="bottleneck", cache_dir=str(tmp_path / "c")).fit(task)
    assert a.cache_hits_ == {"train": False} and b.cache_hits_ == {"train": True}
    c = _quick(stage="bottleneck", cache_dir=str(tmp_path / "c"), image_size=36).fit(task)
    assert c.cache_hits_ == {"train": False}  # another transform
    np.testing.assert_array_equal(a.predict(task.source.X), b.predict(task.source.X))


def test_mirror_image_averaging_records_both_and_caches_the_mirrored_features(
    small_layout, tmp_path
):
    task = catsdogs(data_dir=small_layout.parent)
    m = _quick(tta_hflip=True, cache_dir=str(tmp_path / "c")).fit(task.without_test())
    X = task.test.X
    p = m.predict_proba(X)
    plain = torch.softmax(torch.from_numpy(m._stage_logits(X, "finetune", False)), 1)
    mirror = torch.softmax(torch.from_numpy(m._stage_logits(X, "finetune", True)), 1)
    np.testing.assert_allclose(p, ((plain + mirror) / 2).numpy(), atol=1e-6)
    assert not np.allclose(plain.numpy(), mirror.numpy())  # the mirror image is another input
    preds = m.intermediate_predictions(X)
    assert set(preds) == {"bottleneck", "bottleneck_noflip", "finetune_noflip"}
    np.testing.assert_array_equal(preds["finetune_noflip"], plain.numpy().argmax(1))
    assert not m.cache_hits_["predict_flip"]  # its own cache entry, not the unflipped one's
    m.intermediate_predictions(X)
    assert m.cache_hits_["predict_flip"] and m.cache_hits_["predict"]


# --------------------------------------------------------------------------- freezing


def _net(train_blocks: int = 1, freeze_bn: bool = True) -> FineTuneNet:
    torch.manual_seed(0)
    bb = create_backbone("cifar_resnet20", num_classes=2, in_shape=(3, 32, 32))
    bb.conv_base_only()
    top = TopModel((64, 8, 8), 2, hidden=8)
    return FineTuneNet(bb, top, 4 - train_blocks, bb.input_mean, bb.input_std, freeze_bn)


def test_frozen_blocks_stay_bit_identical_after_a_training_step():
    net = _net(train_blocks=1, freeze_bn=False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(16, 3, 32, 32)
    y = np.repeat([0, 1], 8)
    from tlbench.task import Domain

    trainer = Trainer(max_steps=2, batch_size=8, optimizer="sgd", lr=0.5, weight_decay=0.1,
                      progress_bar=False)  # fmt: skip
    trainer.fit(net, Domain(x.numpy(), y), params=net.trainable_groups(1.0))
    after = net.state_dict()
    prefixes = ("backbone.conv1", "backbone.bn1", "backbone.layer1", "backbone.layer2")
    frozen = [k for k in before if k.startswith(prefixes)]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # incl. BN stats
    moved = [k for k in before if k.startswith("backbone.layer3") and "weight" in k]
    assert any(not torch.equal(before[k], after[k]) for k in moved)
    assert not torch.equal(before["top.out.weight"], after["top.out.weight"])


def test_discriminative_learning_rates_per_block():
    net = _net(train_blocks=2)
    groups = net.trainable_groups(0.5)
    assert [g["lr_mult"] for g in groups] == [1.0, 0.5, 0.25]
    assert groups[1]["params"][0] is net.backbone.layer3[0].conv1.weight
    opt = Trainer(lr=0.1)._make_optimizer(net, groups)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.05, 0.025])


def test_each_stage_has_its_own_learning_rate_schedule(small_layout):
    task = catsdogs(data_dir=small_layout.parent).without_test()
    m = _quick(finetune={"epochs": 2, "batch_size": 8, "schedule": "cosine"}).fit(task)
    assert (m.trainer1_.schedule, m.trainer_.schedule) == ("constant", "cosine")
    t = m.trainer_
    assert t._lr_lambda(0) == 1.0 and t._lr_lambda(t.max_steps) == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="schedule"):
        _quick(bottleneck={"epochs": 1, "batch_size": 8, "schedule": "step"}).fit(task)


def test_l2sp_pulls_the_fine_tuned_weights_toward_the_pretrained_ones(small_layout):
    task = catsdogs(data_dir=small_layout.parent).without_test()
    common = dict(finetune={"epochs": 3, "batch_size": 8, "lr": 0.05})
    free = _quick(**common).fit(task)
    fixed = _quick(**{"finetune": {**common["finetune"], "l2sp_alpha": 5.0}}).fit(task)
    start = _net().backbone.state_dict()  # the same seed-0 initialisation

    def drift(m):
        sd = m.model_.backbone.state_dict()
        return sum(float((sd[k] - start[k]).norm()) for k in sd if k.startswith("layer3")
                   and k.endswith("weight"))  # fmt: skip

    assert drift(fixed) < 0.5 * drift(free)
    assert "reg_loss" in fixed.history_["finetune"]


def test_augmentation_keeps_shape_and_range_and_flips():
    imgs = torch.randint(0, 256, (2, 3, 12, 12), dtype=torch.uint8)
    plain = AugmentedImages(imgs)[0]
    assert torch.allclose(plain, imgs[0].float() / 255)
    torch.manual_seed(3)
    aug = AugmentedImages(imgs, shear=0.2, zoom=0.2, hflip=True)
    outs = [aug[0] for _ in range(8)]
    assert all(o.shape == (3, 12, 12) and o.min() >= 0 and o.max() <= 1 for o in outs)
    assert any(not torch.allclose(o, plain) for o in outs)
    flip_only = AugmentedImages(imgs, hflip=True)
    seen = {bool(torch.equal(flip_only[0], plain)) for _ in range(20)}
    assert seen == {True, False}


# --------------------------------------------------------------------------- backbones


def test_vgg16_blocks_and_a_training_step_with_random_weights():
    torch.manual_seed(0)
    bb = create_backbone("vgg16", num_classes=2, in_shape=(3, 32, 32))
    bb.conv_base_only()
    names = [n for n, _ in bb.conv_blocks()]
    assert names == ["block1", "block2", "block3", "block4", "block5"]
    top = TopModel((512, 1, 1), 2, hidden=8)
    net = FineTuneNet(bb, top, 4, bb.input_mean, bb.input_std)
    block4 = bb.net.features[17].weight.clone()
    logits = net(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 2) and torch.all(logits[:, 0] == 0)  # the sigmoid unit
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    torch.optim.SGD([p for g in net.trainable_groups(1.0) for p in g["params"]], lr=0.1).step()
    assert bb.net.features[17].weight.grad is None and torch.equal(
        block4, bb.net.features[17].weight
    )
    assert bb.net.features[28].weight.grad is not None


def test_weights_path_loads_a_saved_state_dict_and_mismatches_are_named(tmp_path):
    torch.manual_seed(1)
    ref = create_backbone("cifar_resnet20", num_classes=10, in_shape=(3, 32, 32))
    path = tmp_path / "mine.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path)
    got = create_backbone("cifar_resnet20", num_classes=2, in_shape=(3, 32, 32),
                          pretrained=True, weights_path=str(path))  # fmt: skip
    assert torch.equal(got.layer3[2].conv2.weight, ref.layer3[2].conv2.weight)
    bad = {k: v for k, v in ref.state_dict().items() if not k.startswith("layer3.2")}
    bad["layer1.0.conv1.weight"] = torch.zeros(4, 4, 3, 3)
    torch.save(bad, path)
    with pytest.raises(MissingDataError, match=r"missing \['layer3.2.*wrong shape"):
        create_backbone("cifar_resnet20", num_classes=2, in_shape=(3, 32, 32),
                        pretrained=True, weights_path=str(path))  # fmt: skip


def test_missing_vgg16_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingDataError, match="vgg16-397923af.pth.*hub"):
        FineTune(backbone="vgg16", image_size=32, cache_dir=None).fit(
            catsdogs(data_dir=_layout(tmp_path / "d" / "dogs_vs_cats_small").parent)
        )


# --------------------------------------------------------------------------- method


def test_bad_options_are_config_errors(small_layout):
    task = catsdogs(data_dir=small_layout.parent).without_test()
    with pytest.raises(ConfigError, match="method.top.*widht"):
        _quick(top={"widht": 3}).fit(task)
    with pytest.raises(ConfigError, match="train_blocks"):
        _quick(train_blocks=9).fit(task)
    with pytest.raises(ConfigError, match="stage"):
        _quick(stage="three").fit(task)


def test_cli_runs_both_stages_and_records_them(small_layout, tmp_path):
    conf = str(REPO / "conf")
    overrides = [
        "method=finetune",
        "dataset=catsdogs",
        f"paths.data_dir={small_layout.parent}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "method.backbone=cifar_resnet20",
        "method.pretrained=false",
        "method.image_size=32",
        "method.bottleneck.epochs=2",
        "method.bottleneck.batch_size=8",
        "method.finetune.epochs=1",
        "method.finetune.batch_size=8",
    ]
    with initialize_config_dir(version_base="1.3", config_dir=conf):
        cfg = compose(config_name="config", overrides=overrides)
    record = run(cfg, tmp_path / "run")
    assert record["status"] == "ok", record["reason"]
    assert {"accuracy", "accuracy_bottleneck"} <= set(record["metrics"])
    assert record["family"] == "parameter"
    assert record["diagnostics"]["stages"] == ["bottleneck", "finetune"]
    # one training, with the selection's 20 % of the training photos held out to score it
    assert record["selection_score"] is not None and "held out" in record["trained_on"]
    assert record["selection_info"]["n_val"] == round(0.2 * record["n_source"])
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["metrics"] == record["metrics"]
    with initialize_config_dir(version_base="1.3", config_dir=conf):
        cfg = compose(config_name="config", overrides=[*overrides, "method.stage=bottleneck"])
    again = run(cfg, tmp_path / "run2")
    # the first run cached the training and the test features (for its stage 1 accuracy)
    assert again["diagnostics"]["feature_cache_hits"] == {"train": True, "predict": True}
    assert "accuracy_bottleneck" not in again["metrics"]


@pytest.mark.realdata
def test_efficientnet_bottleneck_on_real_photos(data_dir, tmp_path):
    # no importorskip: the dev extra installs the weights, and CI must run this test
    task = catsdogs(data_dir=data_dir, limit_per_class=60)
    method = FineTune(backbone="efficientnet_lite0", stage="bottleneck", image_size=128,
                      bottleneck={"epochs": 10}, cache_dir=str(tmp_path),
                      random_state=0).fit(task.without_test())  # fmt: skip
    acc = float(np.mean(method.predict(task.test.X) == task.test.y))
    assert acc > 0.85, acc
