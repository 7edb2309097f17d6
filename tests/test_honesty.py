"""Honest selection and resume on every path, and the checks that guard them (issue 16)."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The Python release that added each typing name tlbench might import (the docs' "Added in").
TYPING_ADDED = {"Self": (3, 11), "Never": (3, 11), "LiteralString": (3, 11),
                "assert_never": (3, 11), "reveal_type": (3, 11), "override": (3, 12),
                "TypeIs": (3, 13), "ReadOnly": (3, 13)}  # fmt: skip


def _floor() -> tuple[int, int]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    major, minor = re.fullmatch(r">=\s*(\d+)\.(\d+)", meta["project"]["requires-python"]).groups()
    return int(major), int(minor)


def test_python_floor_covers_every_typing_import():
    """``requires-python`` admits no interpreter whose ``typing`` lacks a name tlbench imports."""
    floor = _floor()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["tool"]["ruff"]["target-version"] == f"py{floor[0]}{floor[1]}"
    for path in sorted((ROOT / "tlbench").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=floor)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "typing":
                for alias in node.names:
                    added = TYPING_ADDED.get(alias.name, (3, 0))
                    assert added <= floor, f"{path}: typing.{alias.name} needs {added}"
            if isinstance(node, ast.ImportFrom) and node.module == "typing_extensions":
                raise AssertionError(f"{path}: typing_extensions is not a dependency")


# --------------------------------------------------------------------------- helpers

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from tlbench.runner import run  # noqa: E402


def _cfg(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        return compose(config_name="config", overrides=list(overrides))


# --------------------------------------------------------------------------- devices


def test_kmm_uses_the_trainers_device_and_records_it(tmp_path, monkeypatch):
    """Under hardware=cpu KMM computes on the CPU even where CUDA is present, and says so."""
    seen = []
    real = torch.as_tensor

    def spy(data, *args, **kwargs):
        seen.append(str(kwargs.get("device")))
        return real(data, *args, **{**kwargs, "device": "cpu"})

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "as_tensor", spy)
    record = run(_cfg("method=kmm", "hardware=cpu", "selection=none"), tmp_path)
    assert record["status"] == "ok" and record["device"] == "cpu"
    assert seen and not any(d.startswith("cuda") for d in seen), seen


# --------------------------------------------------------------------------- checkpoints

from tlbench.errors import ConfigError  # noqa: E402
from tlbench.task import Domain  # noqa: E402
from tlbench.trainer import Trainer  # noqa: E402


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (the runner re-raises it)."""


def _kill_at(monkeypatch, n: int) -> None:
    """Kill the process at the ``n``-th history entry of any fit (main, scorer or a stage)."""
    calls = {"n": 0}
    real = Trainer._log

    def log(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise Killed
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_log", log)


def _net(seed: int = 0):
    from tlbench.backbones import create_backbone
    from tlbench.methods.deep import DeepNet

    torch.manual_seed(seed)
    return DeepNet(create_backbone("mlp", num_classes=2, in_shape=(4,), hidden=[8]), 2, 4, 0.0)


def _toy(n: int = 64, seed: int = 0) -> Domain:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return Domain(X, (X[:, 0] > 0).astype(int))


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_a_checkpoint_of_other_data(tmp_path):
    """A checkpoint trained on other samples is refused, with one line naming the file."""
    opts = dict(max_steps=10, batch_size=16, checkpoint_every=5, output_dir=str(tmp_path))
    Trainer(**opts).fit(_net(), _toy(seed=0))
    with pytest.raises(ConfigError, match="belongs to another training"):
        Trainer(**opts, resume=True).fit(_net(), _toy(seed=1))
    with pytest.raises(ConfigError, match="belongs to another training"):
        Trainer(**{**opts, "lr": 0.5}, resume=True).fit(_net(), _toy(seed=0))
    Trainer(**opts, resume=True).fit(_net(), _toy(seed=0))  # the same training resumes


def test_resume_without_a_checkpoint_says_so(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="tlbench.trainer"):
        t = Trainer(max_steps=4, batch_size=16, resume=True, output_dir=str(tmp_path))
        t.fit(_net(), _toy())
    assert "no checkpoint" in caplog.text and t.resumed_from_ is None


@pytest.mark.parametrize("resume", [True, False])
def test_the_scorer_never_touches_the_runs_checkpoints(tmp_path, resume):
    """The held-out scorer's fit neither resumes from nor overwrites the main fit's weights."""
    from tlbench.datasets.toy import toy_shift
    from tlbench.methods.feature.source_only_deep import SourceOnlyDeep
    from tlbench.selection import score_all

    task = toy_shift(n_source=120, n_target=120)
    made = []

    def make():
        made.append(SourceOnlyDeep(hidden=[8], bottleneck_dim=4, random_state=0))
        return made[-1]

    trainer = Trainer(max_steps=10, batch_size=16, checkpoint_every=5, resume=resume,
                      output_dir=str(tmp_path), progress_bar=False)  # fmt: skip
    main = make().fit(task.without_test(), trainer)
    ckpts = tmp_path / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpts.iterdir()}
    scores, _ = score_all("source_val", task=task, method=main, make_method=make,
                          trainer=trainer, test_accuracy=0.0, val_fraction=0.2,
                          seed=0)  # fmt: skip
    assert {p.name: p.read_bytes() for p in ckpts.iterdir()} == before
    assert not list(tmp_path.glob("**/*.pt.tmp*"))
    assert scores["source_val"] is not None
    # the scorer trained its own model on the 80 %, not the main model resumed from last.pt
    ours, theirs = made[-1].model_.state_dict(), main.model_.state_dict()
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours)


DEEP_RESUME = ["method=source_only_deep", "method.hidden=[8]", "method.bottleneck_dim=4",
               "trainer.max_steps=20", "trainer.batch_size=16", "trainer.log_every=5",
               "trainer.checkpoint_every=5", "trainer.resume=true", "trainer.deterministic=true",
               "trainer.progress_bar=false"]  # fmt: skip


def _same_run(a: dict, b: dict) -> None:
    assert a["status"] == b["status"] == "ok"
    assert a["metrics"] == b["metrics"]
    assert a["selection_scores"] == b["selection_scores"]


@pytest.mark.parametrize("trainer_selection", ["last", "source_val"])
@pytest.mark.parametrize("kill_at", [2, 3])
def test_a_deep_run_killed_in_training_resumes_to_the_same_record(
    tmp_path, monkeypatch, trainer_selection, kill_at
):
    extra = [f"trainer.selection={trainer_selection}", "trainer.eval_every=5"]
    whole = run(_cfg(*DEEP_RESUME, *extra), tmp_path / "whole")
    _kill_at(monkeypatch, kill_at)
    with pytest.raises(Killed):
        run(_cfg(*DEEP_RESUME, *extra), tmp_path / "killed")
    again = run(_cfg(*DEEP_RESUME, *extra), tmp_path / "killed")
    _same_run(whole, again)
    assert again["diagnostics"]["resumed_from_step"] == 5 * (kill_at - 1)
    for name in ("last.pt", "selected.pt"):
        assert _same_weights(tmp_path / "whole" / "checkpoints" / name,
                             tmp_path / "killed" / "checkpoints" / name)  # fmt: skip


def test_a_run_killed_in_the_scorers_fit_resumes_to_the_same_record(tmp_path, monkeypatch):
    """A method scored by a second fit (no held-out single training): kill inside that fit."""
    from tlbench.methods.feature.source_only_deep import SourceOnlyDeep

    monkeypatch.setattr(SourceOnlyDeep, "scores_on_holdout", False)
    whole = run(_cfg(*DEEP_RESUME), tmp_path / "whole")
    _kill_at(monkeypatch, 4 + 2)  # the main fit logs 4 times: the scorer's 2nd entry
    with pytest.raises(Killed):
        run(_cfg(*DEEP_RESUME), tmp_path / "killed")
    again = run(_cfg(*DEEP_RESUME), tmp_path / "killed")
    _same_run(whole, again)
    assert _same_weights(tmp_path / "whole" / "checkpoints" / "selected.pt",
                         tmp_path / "killed" / "checkpoints" / "selected.pt")  # fmt: skip


def test_finetune_killed_between_its_stages_resumes_to_the_same_record(tmp_path, monkeypatch):
    from conftest import photo_layout

    from tlbench.methods.parameter.finetune import FineTune

    layout = photo_layout(tmp_path / "data" / "dogs_vs_cats_small", n_train=12, n_val=6)
    cfg = ["method=finetune", "dataset=catsdogs", f"paths.data_dir={layout.parent}",
           f"paths.cache_dir={tmp_path / 'cache'}", "method.backbone=cifar_resnet20",
           "method.pretrained=false", "method.image_size=32", "method.bottleneck.epochs=2",
           "method.bottleneck.batch_size=8", "method.finetune.epochs=2",
           "method.finetune.batch_size=8", "trainer.checkpoint_every=1", "trainer.resume=true",
           "trainer.deterministic=true", "trainer.log_every=1"]  # fmt: skip
    whole = run(_cfg(*cfg), tmp_path / "whole")
    real = FineTune._fine_tune
    state = {"killed": False}

    def once(self, *args, **kwargs):
        if not state["killed"]:
            state["killed"] = True
            raise Killed
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FineTune, "_fine_tune", once)
    with pytest.raises(Killed):
        run(_cfg(*cfg), tmp_path / "killed")
    again = run(_cfg(*cfg), tmp_path / "killed")
    _same_run(whole, again)
    for stage in ("stage1", "stage2"):
        name = Path(stage) / "checkpoints" / "selected.pt"
        assert _same_weights(tmp_path / "whole" / name, tmp_path / "killed" / name)


# --------------------------------------------------------------------------- bad input, defaults


BAD_NUMBERS = ["trainer.lr=-0.1", "trainer.momentum=1.5", "trainer.weight_decay=-1",
               "trainer.grad_clip=0", "trainer.eval_every=-5", "trainer.max_steps=0",
               "trainer.val_fraction=1.0", "selection.val_fraction=1.5"]  # fmt: skip


@pytest.mark.parametrize("override", BAD_NUMBERS)
def test_bad_numbers_fail_before_any_work(tmp_path, monkeypatch, override):
    """One ConfigError naming the option, before the dataset is even loaded."""
    import tlbench.runner as runner

    def no_work(cfg):
        raise AssertionError("the task was built before the options were checked")

    monkeypatch.setattr(runner, "build_task", no_work)
    name = override.split("=")[0]
    with pytest.raises(ConfigError, match=name.split(".")[-1]):
        run(_cfg("method=source_only_deep", override), tmp_path)


def test_a_bad_lr_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tlbench", "method=source_only_deep",
                          "trainer.lr=-1", f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "trainer.lr must be a number > 0" in out.stderr and "Traceback" not in out.stderr


def test_an_error_while_scoring_fails_the_run(tmp_path, monkeypatch):
    """Only the expected cases leave a run unscored; a bug in scoring is not swallowed."""
    from tlbench.methods.baseline import SourceOnly

    def broken(self, X):
        raise ValueError("a bug in predict")

    monkeypatch.setattr(SourceOnly, "predict_source", broken)
    with pytest.raises(ValueError, match="a bug in predict"):
        run(_cfg("method=source_only"), tmp_path)
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"


def test_a_class_too_small_to_hold_out_leaves_the_run_unscored(tmp_path):
    from tlbench.errors import NotScorableError
    from tlbench.selection import split_source
    from tlbench.task import TransferTask

    X = np.arange(20.0).reshape(10, 2)
    y = np.array([0] * 9 + [1])
    task = TransferTask(Domain(X, y), Domain(X), None, "tabular", 2)
    with pytest.raises(NotScorableError, match="class 1"):
        split_source(task, 0.2, 0)


def test_the_trainers_source_val_holdout_is_stratified():
    y = np.array([0] * 90 + [1] * 10)
    dom = Domain(np.zeros((100, 2), dtype=np.float32), y)
    train, val = Trainer(selection="source_val", val_fraction=0.2)._split_validation(dom)
    assert np.bincount(val.y).tolist() == [18, 2] and len(train) == 80
    single = Domain(np.zeros((11, 2), dtype=np.float32), np.array([0] * 10 + [1]))
    train, val = Trainer(selection="source_val", val_fraction=0.2)._split_validation(single)
    assert 1 in train.y and 1 not in val.y  # a one-sample class is never held out


def test_trainer_defaults_are_the_command_lines():
    """``Trainer()`` and a deep method fitted without a trainer train as the CLI does."""
    import inspect

    import yaml

    conf = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["trainer"]
    params = inspect.signature(Trainer).parameters
    literal = {k: v for k, v in conf.items() if not str(v).startswith("${") and k != "_target_"}
    assert {k: params[k].default for k in literal} == literal


def test_a_deep_method_without_a_trainer_uses_those_defaults(monkeypatch):
    from tlbench.datasets.toy import toy_shift
    from tlbench.methods.feature.source_only_deep import SourceOnlyDeep

    seen = {}

    def fit(self, model, labeled, unlabeled=None, **kwargs):
        seen.update(max_steps=self.max_steps, optimizer=self.optimizer, schedule=self.schedule)
        raise Killed

    monkeypatch.setattr(Trainer, "fit", fit)
    with pytest.raises(Killed):
        SourceOnlyDeep(hidden=[8]).fit(toy_shift().without_test())
    assert seen == {"max_steps": 1000, "optimizer": "sgd", "schedule": "dan"}


# --------------------------------------------------------------------------- BatchNorm


def _bn_fit(method) -> dict:
    from tlbench.datasets.toy import toy_images

    task = toy_images(n_source=48, n_target=48).without_test()
    trainer = Trainer(max_steps=6, batch_size=16, deterministic=True, progress_bar=False)
    method.fit(task, trainer)
    return {k: v.clone() for k, v in method.model_.state_dict().items()}


def test_source_only_deep_with_the_target_in_its_forward_is_mmd_at_weight_zero():
    """On a BatchNorm backbone the paired step is the difference; the option removes it."""
    from tlbench.methods.feature.mmd import DDC
    from tlbench.methods.feature.source_only_deep import SourceOnlyDeep

    common = dict(backbone="small_cnn", bottleneck_dim=8, random_state=0)
    ddc = _bn_fit(DDC(mmd_weight=0.0, **common))
    paired = _bn_fit(SourceOnlyDeep(forward_target=True, **common))
    plain = _bn_fit(SourceOnlyDeep(**common))
    assert ddc.keys() == paired.keys()
    assert all(torch.allclose(ddc[k].float(), paired[k].float(), atol=1e-6) for k in ddc)
    bn = [k for k in ddc if k.endswith("running_mean")]
    assert bn and any(not torch.allclose(ddc[k], plain[k]) for k in bn)  # the default differs


# --------------------------------------------------------------------------- the source hook


def _surf_like(seed: int = 0):
    """Source and target differing in their covariances (what CORAL aligns)."""
    from tlbench.task import TransferTask

    rng = np.random.default_rng(seed)
    n, d = 160, 6
    ys, yt = rng.integers(0, 2, n), rng.integers(0, 2, n)
    scale = np.diag([3.0, 0.3, 1.0, 2.0, 0.5, 1.0])
    Xs = rng.normal(size=(n, d)) + ys[:, None] * 1.5
    Xt = (rng.normal(size=(n, d)) + yt[:, None] * 1.5) @ scale
    return TransferTask(Domain(Xs, ys), Domain(Xt), Domain(Xt, yt), "tabular", 2)


def test_coral_scores_held_out_source_samples_aligned():
    """CORAL's classifier was trained on re-coloured source: held-out source must be too."""
    from tlbench.methods.feature.coral import CORAL
    from tlbench.selection import score_all, split_source

    task = _surf_like()

    def make():
        return CORAL(estimator="knn1")

    scores, _ = score_all("source_val", task=task, method=make().fit(task.without_test()),
                          make_method=make, trainer=None, test_accuracy=0.0,
                          val_fraction=0.25, seed=0)  # fmt: skip
    train, val = split_source(task, 0.25, 0)
    from dataclasses import replace

    scorer = make().fit(replace(task, source=train, test=None))
    aligned = scorer.estimator_.predict(np.asarray(val.X) @ scorer.mapping_)  # independent
    raw = scorer.estimator_.predict(np.asarray(val.X))
    assert scores["source_val"] == pytest.approx(np.mean(aligned == val.y))
    assert np.mean(aligned == val.y) != np.mean(raw == val.y)  # the case tells them apart


@pytest.mark.parametrize("name", ["tca", "jda"])
def test_one_map_methods_score_source_samples_with_the_shared_map(name):
    """TCA and JDA embed both domains with one map: source samples are predicted as target."""
    from tlbench.methods.feature.jda import JDA
    from tlbench.methods.feature.tca import TCA

    task = _surf_like()
    cls = {"tca": TCA, "jda": JDA}[name]
    method = cls(n_components=3).fit(task.without_test())
    Zs, _ = method.fit_transform(task.without_test())  # the embedding the classifier saw
    Xs = np.asarray(task.source.X)
    # out of sample, a source sample lands where the fit put it: the classifier's own space
    np.testing.assert_allclose(method.transform_source(Xs), Zs, atol=1e-10)
    assert np.array_equal(method.predict_source(Xs), method.estimator_.predict(Zs))


# --------------------------------------------------------------------------- reports


def test_a_report_names_the_final_classifier_when_rows_differ(tmp_path):
    from tlbench.report import markdown, summarize, tables

    recs = []
    small = ["dataset.n_source=100", "dataset.n_target=100"]  # linear_svm_cv: 40 SVM fits
    for i, (method, over) in enumerate([("tca", small), ("kmm", small), ("coral", small)]):
        recs.append(run(_cfg(f"method={method}", *over), tmp_path / str(i)))
    assert [r["classifier"] for r in recs] == ["knn1", "logreg", "linear_svm_cv"]
    text = markdown(tables(summarize(recs)))
    assert "tca [knn1]" in text and "kmm [logreg]" in text and "coral [linear_svm_cv]" in text
    same = markdown(tables(summarize([recs[0]])))
    assert "[knn1]" not in same  # one classifier: nothing to say


BAD_DEEP = ["method.bottleneck_dim=-4", "method.dropout=1.5", "method.hidden=[-3]",
            "method.backbone_lr_mult=-1"]  # fmt: skip


@pytest.mark.parametrize("override", BAD_DEEP)
def test_bad_deep_hyperparameters_are_one_line(tmp_path, override):
    with pytest.raises(ConfigError, match=override.split(".")[1].split("=")[0]):
        run(_cfg("method=source_only_deep", override, "selection=none"), tmp_path)


def test_a_bad_tca_gamma_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="gamma"):
        run(_cfg("method=tca", "method.kernel=rbf", "method.gamma=-2"), tmp_path)


def test_a_held_out_task_too_small_for_the_config_is_unscored(tmp_path):
    """The main fit takes the config; the 80 % scorer cannot: unscored, with the reason."""
    record = run(_cfg("method=tca", "method.n_components=130", "dataset.n_source=120",
                      "dataset.n_target=40"), tmp_path)  # fmt: skip
    assert record["status"] == "ok" and record["selection_score"] is None
    assert "held-out fit" in record["selection_info"]["note"]
