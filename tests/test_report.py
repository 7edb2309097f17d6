"""The report: selection among configurations, tables, files, bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tlbench.report import ReportError, main, select

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report"


def test_report_reproduces_the_committed_table(tmp_path, capsys):
    args = [str(FIXTURE), "--published", str(FIXTURE / "published.csv"), "--out", str(tmp_path)]
    assert main(args) == 0
    assert (tmp_path / "report.md").read_text() == (FIXTURE / "expected.md").read_text()
    out, err = capsys.readouterr()
    assert "8 run(s) set aside by model selection" in out
    assert "skipped (needs labeled target samples)" in out
    assert "truncated/result.json: unreadable record" in err  # reported, never a crash
    for name in ("report.csv", "report.tex"):
        assert (tmp_path / name).stat().st_size > 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == [
        "rank_office_caltech_surf_transductive_source_val.png",
        "report_office_caltech_surf_transductive_oracle.png",
        "report_office_caltech_surf_transductive_source_val.png",
    ]
    tex = (tmp_path / "report.tex").read_text()
    assert r"\textbf{50.3 $\pm$ 0.5 (2)}" in tex and r"\toprule" in tex


def test_oracle_tables_say_so_and_protocols_never_share_a_table():
    text = (FIXTURE / "expected.md").read_text()
    titles = [line for line in text.splitlines() if line.startswith("###")]
    assert len(titles) == 2
    assert "ORACLE" in titles[0] and "selection oracle" in titles[0]
    assert "ORACLE" not in titles[1]


def _rec(score, acc, **kw):
    base = {
        "status": "ok",
        "method": "m",
        "dataset": "d",
        "protocol": "p",
        "selection": "source_val",
        "source": "a",
        "target": "b",
        "seed": 0,
        "metrics": {"accuracy": acc},
        "config": {"dataset": {}},
        "selection_score": score,
    }
    return {**base, **kw}


def test_selection_keeps_the_best_score_not_the_best_test_accuracy():
    chosen, dropped = select([_rec(0.9, 0.5), _rec(0.8, 0.99), _rec(0.7, 0.6)])
    assert dropped == 2 and [r["metrics"]["accuracy"] for r in chosen] == [0.5]


def test_selection_never_mixes_tasks_seeds_or_labels():
    recs = [
        _rec(0.9, 0.5),
        _rec(0.1, 0.6, seed=1),
        _rec(0.1, 0.7, label="other"),
        _rec(0.1, 0.8, config={"dataset": {"shift": "translation"}}),
    ]
    recs[0]["config"] = {"dataset": {"shift": "covariate"}}
    for r in recs[1:3]:
        r["config"] = {"dataset": {"shift": "covariate"}}
    chosen, dropped = select(recs)
    assert dropped == 0 and len(chosen) == 4


def test_unscored_alternatives_are_refused():
    with pytest.raises(ReportError, match="distinct labels"):
        select([_rec(None, 0.5), _rec(None, 0.6)])


def test_empty_or_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no result.json records" in capsys.readouterr().err
    assert main([str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_mixed_versions_are_noted(tmp_path, capsys):
    for i, version in enumerate(("0.1.0", "0.2.0")):
        (tmp_path / str(i)).mkdir()
        rec = _rec(None, 0.5, seed=i, versions={"tlbench": version})
        (tmp_path / str(i) / "result.json").write_text(json.dumps(rec))
    assert main([str(tmp_path), "--no-plots"]) == 0
    assert "versions 0.1.0, 0.2.0" in capsys.readouterr().err
