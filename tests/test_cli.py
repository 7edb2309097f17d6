"""End to end: run() in-process, the command line, a multirun sweep and the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tlbench import ConfigError
from tlbench.report import main as report_main
from tlbench.results import collect
from tlbench.runner import run

REPO = Path(__file__).resolve().parents[1]
RECORD_KEYS = {
    "method",
    "family",
    "dataset",
    "source",
    "target",
    "seed",
    "selection",
    "status",
    "metrics",
    "fit_seconds",
    "predict_seconds",
    "device",
    "precision",
    "config",
    "overrides",
    "versions",
    "git_commit",
}


def _cfg(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=list(overrides))


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "tlbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def test_run_writes_a_complete_record(tmp_path):
    record = run(_cfg("seed=1"), tmp_path, ["seed=1"])
    saved = json.loads((tmp_path / "result.json").read_text())
    assert set(saved) >= RECORD_KEYS
    assert saved["status"] == "ok" and saved["method"] == "source_only"
    assert saved["family"] == "baseline" and saved["dataset"] == "toy_shift"
    assert 0.5 < saved["metrics"]["accuracy"] <= 1.0
    assert saved["config"]["seed"] == 1 and saved["overrides"] == ["seed=1"]
    assert saved["n_test"] == saved["metrics"]["n_test"] == 90
    assert record["metrics"] == saved["metrics"]


def test_incompatible_pair_is_skipped(tmp_path):
    record = run(_cfg("dataset=toy_images"), tmp_path)
    assert record["status"] == "skipped" and "image" in record["reason"]
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "skipped"


def test_missing_target_labels_is_skipped(tmp_path):
    record = run(_cfg("method=target_only"), tmp_path)
    assert record["status"] == "skipped" and "target_labeled" in record["reason"]


def test_user_error_writes_a_failed_record(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset.protocol 'bogus'"):
        run(_cfg("dataset.protocol=bogus"), tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "failed" and "bogus" in saved["reason"]


def test_unknown_constructor_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unexpected keyword argument 'foo'"):
        run(_cfg("+method.foo=1"), tmp_path)


def test_cli_default_run(tmp_path):
    proc = _cli(f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "result.json" in proc.stdout
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "ok"


def test_cli_user_error_is_one_line(tmp_path):
    proc = _cli(f"hydra.run.dir={tmp_path}/run", "dataset.shift=sideways", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "tlbench: error: unknown toy_shift shift 'sideways'; choose covariate or translation"
    ]


def test_cli_missing_data_names_the_file(tmp_path):
    proc = _cli(
        f"hydra.run.dir={tmp_path}/run",
        "dataset=office_caltech_surf",
        env={"TLBENCH_DATA_DIR": str(tmp_path / "nowhere")},
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Caltech10_SURF_L10.mat" in proc.stderr and "TLBENCH_DATA_DIR" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_multirun_then_report(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    proc = _cli(
        "-m",
        "method=source_only,target_only",
        "seed=0,1",
        "dataset.target_labeled=5",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    records = collect(sweep)
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    assert {(r["method"], r["seed"]) for r in records} == {
        (m, s) for m in ("source_only", "target_only") for s in (0, 1)
    }
    assert report_main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "| source_only |" in out and "(2)" in out
    assert (sweep / "report.csv").read_text().count("\n") == 3
