"""Every config file composes, and the registry and the YAML files agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tlbench.registry import DATASETS, METHODS
from tlbench.runner import build_task
from tlbench.task import TransferTask

CONF = Path(__file__).resolve().parents[1] / "conf"
METHOD_FILES = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
DATASET_FILES = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))


def _compose(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(config_name="config", overrides=list(overrides))


def _target(group: str, name: str) -> str:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())["_target_"]


def test_every_registered_name_has_a_yaml():
    assert set(METHODS.names()) <= set(METHOD_FILES)
    assert set(DATASETS.names()) <= set(DATASET_FILES)


@pytest.mark.parametrize("name", METHOD_FILES)
def test_method_yaml_targets_a_registered_class(name):
    assert METHODS.find(_target("method", name)) is not None


@pytest.mark.parametrize("name", DATASET_FILES)
def test_dataset_yaml_targets_a_registered_loader(name):
    assert DATASETS.find(_target("dataset", name)) is not None


@pytest.mark.parametrize("method", METHOD_FILES)
@pytest.mark.parametrize("dataset", DATASET_FILES)
def test_compose_every_pair(method, dataset):
    cfg = _compose(f"method={method}", f"dataset={dataset}", "seed=3")
    obj = instantiate(cfg.method)
    assert type(obj) is METHODS.find(cfg.method._target_).obj
    if "random_state" in cfg.method:
        assert obj.random_state == 3
    assert cfg.dataset.seed == 3


@pytest.mark.parametrize("dataset", [d for d in DATASET_FILES if d.startswith("toy_")])
def test_builtin_datasets_instantiate(dataset):
    task = build_task(_compose(f"dataset={dataset}"))
    assert isinstance(task, TransferTask)
    assert task.kind == DATASETS.entry(dataset).meta["kind"]


def test_unknown_key_is_hydras_error():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="estimatr"):
        _compose("method.estimatr=knn1")


def test_unknown_method_lists_the_choices():
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="source_only"):
        _compose("method=nope")


def test_data_dir_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TLBENCH_DATA_DIR", "/some/where")
    assert _compose().paths.data_dir == "/some/where"
    monkeypatch.delenv("TLBENCH_DATA_DIR")
    assert _compose().paths.data_dir == "data"


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_compose_every_experiment(name):
    cfg = _compose(f"experiment={name}")
    assert METHODS.find(cfg.method._target_) is not None
    assert DATASETS.find(cfg.dataset._target_) is not None


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "hardware").glob("*.yaml")))
def test_compose_every_hardware_preset(name):
    cfg = _compose(f"hardware={name}")
    assert cfg.hardware.device in {"auto", "cpu", "cuda", "mps", "cuda:free"}
    assert cfg.trainer.precision in {"fp32", "bf16", "fp16"}
