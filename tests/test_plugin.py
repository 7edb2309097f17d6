"""A third-party package adds a method and a dataset without touching tlbench."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent / "plugin_example"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin installed (with its entry points) into a private folder."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    source = build / "plugin_example"
    shutil.copytree(PLUGIN, source)  # setuptools builds in the source folder: not in the repo
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=build,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return site


def _python(code_or_args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, *code_or_args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_plugin_is_in_the_catalog(plugin_site, tmp_path):
    proc = _python(["-m", "tlbench.catalog", "--format", "json"], plugin_site, tmp_path)
    assert proc.returncode == 0, proc.stderr
    cat = json.loads(proc.stdout)
    assert "majority" in {m["name"] for m in cat["methods"]}
    assert "toy_xor" in {d["name"] for d in cat["datasets"]}


@pytest.mark.slow
def test_plugin_runs_through_the_cli_with_its_own_yaml(plugin_site, tmp_path):
    proc = _python(
        [
            "-m",
            "tlbench",
            "hydra.searchpath=[pkg://tlbench_majority.conf]",
            "method=majority",
            "dataset=toy_xor",
            f"hydra.run.dir={tmp_path}/run",
        ],
        plugin_site,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "ok"
    assert record["method"] == "majority" and record["dataset"] == "toy_xor"
    assert record["family"] == "baseline"
