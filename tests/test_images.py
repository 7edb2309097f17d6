"""Every family on the same photos: method x dataset defaults, target shifts, the shared
frozen-feature cache, tabular methods on image features, one training per deep run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_layout
from hydra import compose, initialize_config_dir

from tlbench import ConfigError, MissingDataError
from tlbench.backbones import resolve_backbone
from tlbench.datasets.catsdogs import catsdogs
from tlbench.datasets.shifts import SHIFTS, Shift, corrupt, shift_task
from tlbench.features import CACHE_STATS, FrozenSpec, frozen_features
from tlbench.methods.feature.dan import DAN
from tlbench.runner import build_task, run

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")


@pytest.fixture
def photos(tmp_path) -> Path:
    """The ``paths.data_dir`` of a small catsdogs layout."""
    return photo_layout(tmp_path / "data" / "dogs_vs_cats_small", n_train=10).parent


def _compose(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        return compose(config_name="config", overrides=list(overrides))


# Small random-weight networks keep these tests fast; the defaults are composed separately.
RANDOM_NET = ["method.backbone=cifar_resnet20", "method.pretrained=false"]
RANDOM_FEATURES = "dataset.features={backbone: cifar_resnet20, pretrained: false}"
QUICK = ["trainer.max_steps=6", "trainer.batch_size=4", "trainer.progress_bar=false"]


def _run(tmp_path: Path, photos: Path, name: str, *overrides: str) -> dict:
    cfg = _compose(f"paths.data_dir={photos}", f"paths.cache_dir={tmp_path / 'cache'}",
                   *QUICK, *overrides)  # fmt: skip
    return run(cfg, tmp_path / name)


# --------------------------------------------------------------------------- defaults


def test_deep_methods_on_photos_default_to_a_frozen_pretrained_base():
    for method in ("dan", "mmd", "source_only_deep"):
        m = _compose(f"method={method}", "dataset=catsdogs").method
        assert (m.backbone, m.pretrained, m.image_size, m.train_blocks) == (
            "imagenet",
            True,
            "native",
            0,
        )
        tabular = _compose(f"method={method}", "dataset=amazon_reviews").method
        assert (tabular.backbone, tabular.pretrained, tabular.train_blocks) == ("auto", False, None)


def test_the_users_overrides_win_over_the_dataset_default():
    m = _compose("method=dan", "dataset=catsdogs", "method.backbone=resnet18",
                 "method.train_blocks=2").method  # fmt: skip
    assert (m.backbone, m.train_blocks, m.pretrained) == ("resnet18", 2, True)
    cfg = _compose("method=tca", "dataset=catsdogs", "dataset.features=null")
    assert cfg.dataset.features is None
    assert _compose("method=tca", "dataset=catsdogs").dataset.features == "imagenet"


def test_imagenet_means_vgg16_only_when_its_weights_are_here(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    name, why = resolve_backbone("imagenet")
    assert name == "efficientnet_lite0" and "vgg16-397923af.pth" in why
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"")
    assert resolve_backbone("imagenet")[0] == "vgg16"
    assert resolve_backbone("resnet18") == ("resnet18", "as configured")


# --------------------------------------------------------------------------- shifts


def test_every_shift_changes_the_photo_more_with_severity():
    rng = np.random.default_rng(0)
    img = (rng.random((32, 32, 3)) * 60 + np.linspace(0, 180, 32)[None, :, None]).astype(np.uint8)
    for name in SHIFTS:
        dist = []
        for sev in (1, 3, 5):
            out = corrupt(img, name, sev, np.random.default_rng(1))
            assert out.shape == img.shape and out.dtype == np.uint8
            dist.append(float(np.abs(out.astype(float) - img).mean()))
        assert 0 < dist[0] < dist[2], (name, dist)


def test_a_shift_corrupts_the_target_only_and_is_deterministic(photos):
    task = catsdogs(data_dir=photos, image_size=24)
    shifted = shift_task(task, Shift("gaussian_noise", 4, seed=0))
    assert torch.equal(shifted.source.X[0], task.source.X[0])
    assert not torch.equal(shifted.target.X[0], task.target.X[0])
    assert torch.equal(shifted.target.X[0], shifted.target.X[0])  # the same on every read
    again = shift_task(task, Shift("gaussian_noise", 4, seed=0))
    assert torch.equal(again.test.X[3], shifted.test.X[3])
    other_seed = shift_task(task, Shift("gaussian_noise", 4, seed=1))
    assert not torch.equal(other_seed.target.X[0], shifted.target.X[0])
    assert other_seed.target.X.checksum() != shifted.target.X.checksum()
    # a deterministic corruption is the same for every seed, and so is its cache key
    blur = [shift_task(task, Shift("gaussian_blur", 2, seed=s)).target.X for s in (0, 1)]
    assert blur[0].checksum() == blur[1].checksum() and torch.equal(blur[0][2], blur[1][2])
    milder = shift_task(task, Shift("gaussian_noise", 1, seed=0))
    assert not torch.equal(milder.target.X[0], shifted.target.X[0])
    # the cache keys of the photos follow the shift
    assert shifted.target.X.checksum() != task.target.X.checksum()
    assert shifted.target.X.checksum() != milder.target.X.checksum()
    assert shifted.source.X.checksum() == task.source.X.checksum()
    assert shifted.info["target_shift"] == "gaussian_noise"


def test_bad_shifts_are_one_line_errors(photos):
    with pytest.raises(ConfigError, match="choose one of gaussian_noise.*grayscale"):
        build_task(_compose("dataset=catsdogs", f"paths.data_dir={photos}",
                            "dataset.target_shift=fog"))  # fmt: skip
    with pytest.raises(ConfigError, match="1..5"):
        build_task(_compose("dataset=catsdogs", f"paths.data_dir={photos}",
                            "dataset.target_shift=jpeg", "dataset.shift_severity=6"))  # fmt: skip
    with pytest.raises(ConfigError, match="tabular"):
        build_task(_compose("dataset=toy_shift", "dataset.target_shift=jpeg"))


@pytest.mark.slow
def test_a_bad_shift_on_the_command_line_exits_2_with_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tlbench", "dataset.target_shift=jpeg",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "tabular" in out.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "failed"


def test_image_arrays_are_shifted_too():
    task = build_task(_compose("dataset=toy_images", "dataset.target_shift=contrast"))
    plain = build_task(_compose("dataset=toy_images"))
    assert np.array_equal(task.source.X, plain.source.X)
    assert not np.allclose(task.target.X, plain.target.X)
    assert task.target.X.shape == plain.target.X.shape


# --------------------------------------------------------------------------- the cache


def test_the_frozen_features_of_a_subset_come_from_the_whole_sets_entry(photos, tmp_path):
    task = catsdogs(data_dir=photos)
    spec = FrozenSpec("cifar_resnet20", pretrained=False, image_size=32)
    full, hit = frozen_features(spec, task.source.X, cache_dir=tmp_path)
    assert not hit and full.shape == (20, 64)
    before = CACHE_STATS["hits"]
    part, hit = frozen_features(spec, task.source.X.subset([3, 1, 7]), cache_dir=tmp_path)
    assert hit and CACHE_STATS["hits"] == before + 1
    np.testing.assert_array_equal(part, full[[3, 1, 7]])
    # another layer, another entry
    _, hit = frozen_features(FrozenSpec("cifar_resnet20", False, None, 32, 2, False),
                             task.source.X, cache_dir=tmp_path)  # fmt: skip
    assert not hit


def test_a_second_method_reads_the_first_ones_features(photos, tmp_path):
    first = _run(tmp_path, photos, "dan", "method=dan", "dataset=catsdogs", *RANDOM_NET)
    assert first["status"] == "ok", first["reason"]
    net = first["diagnostics"]["network"]
    assert net["cache_hits"] == {"source": False, "target": False}
    assert net["image_size"] == 32 and net["train_blocks"] == 0
    hits = CACHE_STATS["hits"]
    second = _run(tmp_path, photos, "src", "method=source_only_deep", "dataset=catsdogs",
                  *RANDOM_NET)  # fmt: skip
    assert second["diagnostics"]["network"]["cache_hits"] == {"source": True, "target": True}
    assert CACHE_STATS["hits"] > hits
    # a tabular method on the same photos reads the same pooled entries
    third = _run(tmp_path, photos, "tca", "method=tca", "dataset=catsdogs", RANDOM_FEATURES)
    assert third["status"] == "ok", third["reason"]
    assert third["task_info"]["features"]["cache_hits"] == {
        "source": True,
        "target": True,
        "test": True,
    }


def test_a_shifted_target_never_reads_the_unshifted_entry(photos, tmp_path):
    plain = _run(tmp_path, photos, "a", "method=dan", "dataset=catsdogs", *RANDOM_NET)
    shifted = _run(tmp_path, photos, "b", "method=dan", "dataset=catsdogs", *RANDOM_NET,
                   "dataset.target_shift=pixelate")  # fmt: skip
    assert shifted["diagnostics"]["network"]["cache_hits"] == {"source": True, "target": False}
    assert shifted["task_info"]["target_shift"] == "pixelate"
    assert "pixelate severity 3" in _summary(shifted)
    assert plain["metrics"]["n_test"] == shifted["metrics"]["n_test"] == 12


def _summary(record: dict) -> str:
    from tlbench.runner import summary

    return summary(record)


# --------------------------------------------------------------------------- every family


@pytest.mark.parametrize("method", ["source_only", "kmm", "tca", "jda", "coral"])
def test_tabular_methods_run_on_photo_features(photos, tmp_path, method):
    small = ["method.n_components=8"] if method in ("tca", "jda") else []  # 32 photos here
    record = _run(tmp_path, photos, method, f"method={method}", "dataset=catsdogs",
                  RANDOM_FEATURES, *small)  # fmt: skip
    assert record["status"] == "ok", record["reason"]
    assert record["kind"] == "tabular" and record["metrics"]["n_test"] == 12
    assert record["selection_scores"]["source_val"] is not None


def test_tradaboost_uses_a_few_labeled_target_photos(photos, tmp_path):
    record = _run(tmp_path, photos, "tr", "method=tradaboost", "dataset=catsdogs",
                  RANDOM_FEATURES, "dataset.target_labeled=2")  # fmt: skip
    assert record["status"] == "ok", record["reason"]
    assert record["n_target_labeled"] == 4 and record["metrics"]["n_test"] == 8


def test_tabular_methods_without_features_are_skipped_not_wrong(photos, tmp_path):
    record = _run(tmp_path, photos, "x", "method=coral", "dataset=catsdogs",
                  "dataset.features=null")  # fmt: skip
    assert record["status"] == "skipped" and "image" in record["reason"]


def test_features_without_their_weights_are_a_clear_error(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingDataError, match="vgg16-397923af.pth"):
        _run(tmp_path, photos, "v", "method=tca", "dataset=catsdogs", "dataset.features=vgg16")
    record = json.loads((tmp_path / "v" / "result.json").read_text())
    assert record["status"] == "failed"


# --------------------------------------------------------------------------- one training


def test_a_deep_run_is_trained_once_and_scored_on_held_out_source(photos, tmp_path, monkeypatch):
    fits = []
    original = DAN.fit

    def counting(self, task, trainer=None):
        fits.append(len(task.source))
        return original(self, task, trainer)

    monkeypatch.setattr(DAN, "fit", counting)
    record = _run(tmp_path, photos, "once", "method=dan", "dataset=catsdogs", *RANDOM_NET)
    assert fits == [16]  # one training, on 80 % of the 20 source photos
    assert record["trained_on"].startswith("16 of the 20")
    assert record["selection_info"]["trained_once"] is True
    for protocol in ("source_val", "iwv", "dev", "entropy"):
        assert record["selection_scores"][protocol] is not None, protocol
    rows = list(csv.DictReader((tmp_path / "once" / "history.csv").open()))
    assert [int(r["step"]) for r in rows] == [6] and float(rows[0]["cls_loss"]) > 0
    none = _run(tmp_path, photos, "all", "method=dan", "dataset=catsdogs", *RANDOM_NET,
                "selection=none")  # fmt: skip
    assert fits[-1] == 20 and "trained_on" not in none


def test_reverse_validation_of_a_deep_run_trains_a_reverse_model(photos, tmp_path, monkeypatch):
    fits = []
    original = DAN.fit

    def counting(self, task, trainer=None):
        fits.append((task.source.name, len(task.source), len(task.target)))
        return original(self, task, trainer)

    monkeypatch.setattr(DAN, "fit", counting)
    record = _run(tmp_path, photos, "rv", "method=dan", "dataset=catsdogs", *RANDOM_NET,
                  "selection=reverse")  # fmt: skip
    assert record["status"] == "ok", record["reason"]
    # the one training on 16 of the 20 source photos, then the reverse model: the target
    # photos, pseudo-labeled, as its source and the 16 source photos as its target
    n_target = record["n_target"]
    assert [f[1:] for f in fits] == [(16, n_target), (n_target, 16)]
    assert fits[1][0].endswith("(pseudo-labeled)")
    assert 0 <= record["selection_score"] == record["selection_scores"]["reverse"] <= 1
    assert sum(record["selection_info"]["reverse_pseudo_label_counts"]) == n_target


def test_the_default_network_on_photos_end_to_end(photos, tmp_path):
    # the composed default: the offline ImageNet base (or vgg16 when its weights are here)
    record = _run(tmp_path, photos, "default", "method=dan", "dataset=catsdogs")
    assert record["status"] == "ok", record["reason"]
    net = record["diagnostics"]["network"]
    assert net["backbone"] in ("efficientnet_lite0", "vgg16") and net["image_size"] == 224
    assert "network   " in _summary(record) and net["why"] in _summary(record)


def test_the_cross_family_study_composes():
    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose(config_name="config", overrides=["experiment=catsdogs_families"],
                      return_hydra_config=True)  # fmt: skip
    assert cfg.dataset._target_.endswith("catsdogs") and cfg.selection.name == "source_val"
    params = cfg.hydra.sweeper.params
    assert {"source_only", "kmm", "tca", "jda", "coral", "dan"} <= set(params.method.split(","))
    shifts = params["dataset.target_shift"].split(",")
    assert shifts[0] == "none" and len(shifts) >= 4 and set(shifts[1:]) <= set(SHIFTS)
    assert len(params.seed.split(",")) == 3


def test_training_curves_go_to_tensorboard_when_it_is_installed(tmp_path):
    pytest.importorskip("tensorboard")  # the optional extra tlbench[tensorboard]
    from tlbench.results import write_history

    write_history(tmp_path, {"step": [5, 10], "loss": [0.9, 0.4], "eval_step": [10],
                             "eval_score": [0.75]})  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [r["eval_score"] for r in rows] == ["", "0.75"]
    assert any((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_train_blocks_trains_copies_of_the_top_blocks_above_the_cached_part(photos, tmp_path):
    from tlbench.features import frozen_base
    from tlbench.trainer import Trainer

    task = catsdogs(data_dir=photos).without_test()
    spec = FrozenSpec("cifar_resnet20", pretrained=False, image_size=32)
    before = {k: v.clone() for k, v in frozen_base(spec).state_dict().items()}
    method = DAN(backbone="cifar_resnet20", pretrained=False, image_size=32, train_blocks=1,
                 cache_dir=str(tmp_path), random_state=0)  # fmt: skip
    method.fit(task, Trainer(max_steps=5, batch_size=4, lr=0.1, optimizer="sgd", seed=0,
                             progress_bar=False))  # fmt: skip
    assert method.network_["blocks"] == 4  # stem, layer1..3: the last one trains
    tail = method.model_.backbone.body[0]
    trained = tail.state_dict()
    frozen = frozen_base(spec).body[3].state_dict()
    assert any(not torch.equal(trained[k].cpu(), frozen[k]) for k in trained)
    after = frozen_base(spec).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shared base never moves
    assert method.predict(catsdogs(data_dir=photos).test.X).shape == (12,)
