"""Sweeps are re-runnable: stable folders, DONE markers, failures that do not stop the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tlbench.results import collect
from tlbench.runner import DONE_FILE, run

REPO = Path(__file__).resolve().parents[1]


def _cfg(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=list(overrides))


def _sweep(sweep: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "tlbench", "-m", f"hydra.sweep.dir={sweep}", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=sweep.parent,
        timeout=600,
    )


def test_a_finished_run_is_not_run_again(tmp_path):
    first = run(_cfg(), tmp_path)
    assert json.loads((tmp_path / DONE_FILE).read_text())["run_id"] == first["run_id"]
    again = run(_cfg(), tmp_path)
    assert again["started_at"] == first["started_at"]  # the stored record, nothing re-run
    changed = run(_cfg("method.estimator=knn1"), tmp_path)  # another config: runs
    assert changed["run_id"] != first["run_id"]
    forced = run(_cfg("method.estimator=knn1", "rerun=true"), tmp_path)
    assert forced["run_id"] == changed["run_id"]
    assert forced["started_at"] >= changed["started_at"]


def test_a_failed_run_is_retried(tmp_path):
    with pytest.raises(ValueError):
        run(_cfg("dataset.protocol=bogus"), tmp_path)
    assert not (tmp_path / DONE_FILE).exists()


@pytest.mark.slow
def test_relaunch_runs_nothing_and_failures_do_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "method=source_only,target_only",
        "dataset.target_labeled=3",
        "dataset.shift=covariate,sideways",
    ]
    proc = _sweep(sweep, *args)
    assert proc.returncode == 0, proc.stderr
    records = collect(sweep)
    assert sorted(r["status"] for r in records) == ["failed", "failed", "ok", "ok"]
    failed = [r for r in records if r["status"] == "failed"]
    assert all("sideways" in r["reason"] for r in failed)
    stamps = {r["_path"]: r["started_at"] for r in records if r["status"] == "ok"}

    proc = _sweep(sweep, *args)  # relaunch: the two finished runs are skipped
    assert proc.returncode == 0, proc.stderr
    again = {r["_path"]: r["started_at"] for r in collect(sweep) if r["status"] == "ok"}
    assert again == stamps


@pytest.mark.slow
def test_adding_a_method_does_not_change_another_methods_numbers(tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    assert _sweep(one, "method=source_only", "seed=0,1").returncode == 0
    assert (
        _sweep(
            two, "method=source_only,target_only", "dataset.target_labeled=0", "seed=0,1"
        ).returncode
        == 0
    )

    def accuracies(sweep):
        return {
            (Path(r["_path"]).parent.name, r["seed"]): r["metrics"]["accuracy"]
            for r in collect(sweep)
            if r["method"] == "source_only"
        }

    a, b = accuracies(one), accuracies(two)
    assert len(a) == 2 and {s: v for (_, s), v in a.items()} == {s: v for (_, s), v in b.items()}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launchers_run_a_two_job_sweep(tmp_path, launcher):
    sweep = tmp_path / launcher
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    proc = _sweep(
        sweep,
        f"hydra/launcher={launcher}",
        *extra,
        "method=source_only,target_only",
        "dataset.target_labeled=3",
    )
    assert proc.returncode == 0, proc.stderr
    records = collect(sweep)
    assert sorted(r["method"] for r in records) == ["source_only", "target_only"]
    assert {r["status"] for r in records} == {"ok"}


def test_gpu_claims_are_exclusive(tmp_path):
    from tlbench.gpus import claim_gpu

    with claim_gpu(2, tmp_path) as first, claim_gpu(2, tmp_path) as second:
        assert {first, second} == {0, 1}
        with pytest.raises(TimeoutError), claim_gpu(2, tmp_path, poll_seconds=0.01, timeout=0.05):
            pass
    with claim_gpu(2, tmp_path) as again:  # released at the end of the block
        assert again == 0
