"""Multi-source tasks and the multi-source methods (issue 13).

The task contract (pooled source + domain index), the adapters' lists, the records, bad input,
single-source runs unchanged, and MsTrAdaBoost / TaskTrAdaBoost / best_single_source checked
against independent loops written from the paper.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from tlbench.datasets.common import make_task
from tlbench.datasets.toy import toy_multisource
from tlbench.errors import ConfigError, DataError, IncompatibleTaskError
from tlbench.methods._linear import PrecomputedLinearSVC, fit_linear_svc
from tlbench.methods.baseline import BestSingleSource, SourceOnly, proxy_a_distance
from tlbench.methods.instance._boosting import round_alpha
from tlbench.methods.instance.mstradaboost import MsTrAdaBoost
from tlbench.methods.parameter.tasktradaboost import TaskTrAdaBoost
from tlbench.registry import METHODS
from tlbench.runner import run
from tlbench.selection import split_source
from tlbench.task import Domain, TransferTask, pool_domains

REPO = Path(__file__).resolve().parents[1]


def _cfg(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=list(overrides))


def _task(k: int = 3, seed: int = 0, **kw) -> TransferTask:
    return toy_multisource(target_labeled=k, seed=seed, **kw).without_test()


# ------------------------------------------------------------------ the task contract


def test_pooled_source_keeps_each_domain():
    task = toy_multisource(n_per_domain=40)
    assert task.is_multi_source and task.source_names == ("near", "far", "flipped")
    assert task.source.name == "near+far+flipped" and len(task.source) == 120
    parts = task.sources
    assert [d.name for d in parts] == ["near", "far", "flipped"]
    for k, part in enumerate(parts):
        rows = np.flatnonzero(task.source.domain_index == k)
        np.testing.assert_array_equal(part.X, task.source.X[rows])
        np.testing.assert_array_equal(part.y, task.source.y[rows])
        assert part.domain_index is None
    # a held-out split keeps the index: every held-out sample knows its domain
    train, val = split_source(task, 0.25, 0)
    assert train.domain_index is not None and len(train) + len(val) == 120
    assert {d.name for d in train.split_domains()} == {"near", "far", "flipped"}
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train.domain_index, val.domain_index])),
        np.sort(task.source.domain_index),
    )


def test_pool_domains_dense_and_sparse():
    a = Domain(np.ones((2, 3)), np.array([0, 1]), name="a")
    b = Domain(sp.csr_matrix(np.zeros((3, 3))), np.array([1, 0, 1]), name="b")
    pooled = pool_domains([a, b])
    assert sp.issparse(pooled.X) and pooled.X.shape == (5, 3)
    np.testing.assert_array_equal(pooled.domain_index, [0, 0, 1, 1, 1])
    assert pool_domains([a]) is a  # one domain stays single-source
    with pytest.raises(DataError, match="distinct names"):
        pool_domains([a, a])


def test_task_validation_of_the_domain_index():
    task = toy_multisource(n_per_domain=40)
    bad = replace(task.source, domain_index=task.source.domain_index + 5)
    with pytest.raises(DataError, match="domain_index values outside"):
        replace(task, source=bad)
    with pytest.raises(DataError, match="not 120 integers"):
        replace(task, source=replace(task.source, domain_index=np.zeros(3, dtype=int)))
    with pytest.raises(DataError, match="also one of the sources"):
        replace(task, target=replace(task.target, name="far"))


def test_list_of_one_source_is_the_single_source_task():
    one = toy_multisource(source=["near"], target_labeled=2)
    assert not one.is_multi_source and one.source.domain_index is None
    assert one.source.name == "near" and one.sources == (one.source,)
    plain = toy_multisource(source="near", target_labeled=2)
    np.testing.assert_array_equal(one.source.X, plain.source.X)
    np.testing.assert_array_equal(one.target.y, plain.target.y)


def test_make_task_preprocesses_each_source_on_its_own():
    rng = np.random.default_rng(0)
    a = (rng.normal(5, 2, (30, 4)), rng.integers(0, 2, 30), "a")
    b = (rng.normal(-3, 1, (20, 4)), rng.integers(0, 2, 20), "b")
    t = (rng.normal(0, 1, (25, 4)), rng.integers(0, 2, 25), "t")
    task = make_task(source=[a, b], target=t, num_classes=2, preprocess_name="zscore")
    for part in task.sources:  # z-scored within its own domain
        np.testing.assert_allclose(part.X.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(part.X.std(axis=0), 1, atol=1e-12)
    assert task.info["sources"] == ["a", "b"]


@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        (["near", "near"], ConfigError, "more than once"),
        (["near", "target"], IncompatibleTaskError, "lists the target"),
        ([], ConfigError, "empty list"),
        (["near", "bogus"], ConfigError, "no domain 'bogus'"),
        (["near", 3], ConfigError, "not a domain name"),
    ],
)
def test_bad_source_lists(source, error, match):
    with pytest.raises(error, match=match):
        toy_multisource(source=source)


# ------------------------------------------------------------------ runner and records


def test_records_name_every_source_and_how_they_were_read(tmp_path):
    rec = run(_cfg("dataset=toy_multisource", "method=source_only"), tmp_path / "a")
    assert rec["status"] == "ok" and rec["source"] == "near+far+flipped"
    assert rec["sources"] == ["near", "far", "flipped"] and rec["source_mode"] == "pooled"
    assert rec["n_source_per_domain"] == {"near": 200, "far": 200, "flipped": 200}
    ms = run(_cfg("dataset=toy_multisource", "method=mstradaboost",
                  "dataset.target_labeled=3"), tmp_path / "b")  # fmt: skip
    assert ms["source_mode"] == "per source"
    assert set(ms["diagnostics"]["rounds_won"]) == {"near", "far", "flipped"}
    single = run(_cfg(), tmp_path / "c")
    assert single["source_mode"] == "single" and single["sources"] == ["source"]


def test_pooled_method_trains_on_the_union(tmp_path):
    task = toy_multisource(target_labeled=0, seed=0)
    rec = run(_cfg("dataset=toy_multisource", "method=source_only", "seed=0"), tmp_path)
    X = np.vstack([d.X for d in task.sources])
    y = np.concatenate([d.y for d in task.sources])
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=0).fit(X, y)
    assert rec["metrics"]["accuracy"] == pytest.approx(
        np.mean(clf.predict(task.test.X) == task.test.y)
    )


def test_a_dataset_with_one_source_refuses_a_list(tmp_path):
    with pytest.raises(ConfigError, match="takes one source domain.*toy_multisource"):
        run(_cfg("dataset=toy_relational", "dataset.source=[epidemic,network]"), tmp_path)
    rec = run(_cfg("dataset=toy_relational", "method=relational_scratch",
                   "dataset.source=[epidemic]"), tmp_path / "one")  # fmt: skip
    assert rec["status"] == "ok" and rec["source"] == "epidemic"


class _NoPooling(SourceOnly):
    multi_source: ClassVar[str] = "refuse"


def test_a_method_that_cannot_pool_is_skipped():
    task = _task()
    with pytest.raises(IncompatibleTaskError, match="cannot pool several source domains"):
        _NoPooling().fit(task)
    _NoPooling().fit(toy_multisource(source="near").without_test())  # one source: fine


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["dataset.source=[near,near]"], "more than once"),
        (["dataset.source=[near,target]"], "lists the target"),
        (["method=tradaboost"], "needs labeled target samples"),
    ],
)
def test_cli_bad_multi_source_input_is_one_line_exit_2(tmp_path, overrides, match):
    env = {**os.environ}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tlbench", "dataset=toy_multisource", *overrides,
         f"hydra.run.dir={tmp_path}/run"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tlbench:")]
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in proc.stderr


# Accuracies and selection scores of single-source runs, measured with the code before
# multi-source tasks existed (commit bc7870e): a single-source task must not change.
BEFORE = {
    ("method=source_only",): (0.8777777777777778, 0.8333333333333334),
    ("method=tradaboost", "dataset.target_labeled=3"): (0.9111111111111111, 0.8),
    ("method=kmm",): (0.8555555555555555, 0.55),
    ("method=tca", "selection=source_val"): (0.8666666666666667, 0.7833333333333333),
    ("method=coral",): (0.9222222222222223, 0.8166666666666667),
    ("method=kliep", "selection=iwv"): (0.8777777777777778, 0.9590420112492822),
}


@pytest.mark.parametrize("overrides", sorted(BEFORE))
def test_single_source_runs_are_unchanged(tmp_path, overrides):
    rec = run(_cfg(*overrides), tmp_path)
    acc, score = BEFORE[overrides]
    assert rec["metrics"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert rec["selection_score"] == pytest.approx(score, abs=1e-9)


# ------------------------------------------------------------------ MsTrAdaBoost


def _reference_mstradaboost(task, M, make):
    """Yao & Doretto 2010, Algorithm 1, written out for two classes with labels in {-1, +1}."""
    labeled = task.target.labeled()
    Xt, yt = labeled.X, 2 * labeled.y - 1
    parts = [(d.X, 2 * d.y - 1) for d in task.sources]
    n = sum(len(y) for _, y in parts)
    ws = [np.ones(len(y)) for _, y in parts]
    wt = np.ones(len(yt))
    alpha_s = 0.5 * math.log(1 + math.sqrt(2 * math.log(n) / M))
    rounds = []
    for _ in range(M):
        total = sum(w.sum() for w in ws) + wt.sum()
        ws, wt = [w / total for w in ws], wt / total
        cands = []
        for (X, y), w in zip(parts, ws, strict=True):
            Xk, yk = np.vstack([X, Xt]), np.concatenate([y, yt])
            wk = np.concatenate([w, wt])
            h = make().fit(Xk, yk, sample_weight=wk * len(wk) / wk.sum())
            eps = np.sum(wt * (h.predict(Xt) != yt)) / wt.sum()
            src_eps = np.sum(w * (h.predict(X) != y)) / w.sum()
            cands.append((eps, src_eps, h))
        eps, _, h = min(cands, key=lambda c: (c[0], c[1]))
        alpha = 0.5 * math.log((1 - max(eps, 1e-10)) / max(eps, 1e-10)) if eps < 0.5 else 0.0
        ws = [
            w * np.exp(-alpha_s * np.abs(h.predict(X) - y))
            for (X, y), w in zip(parts, ws, strict=True)
        ]
        wt = wt * np.exp(alpha * np.abs(h.predict(Xt) - yt))
        rounds.append((alpha, h))
    return rounds


def test_mstradaboost_is_the_papers_algorithm():
    task = _task(k=4, n_per_domain=80)
    make = lambda: LogisticRegression(C=0.5, max_iter=2000)  # noqa: E731
    ref = _reference_mstradaboost(task, 8, make)
    ours = MsTrAdaBoost(n_estimators=8, estimator=LogisticRegression(C=0.5, max_iter=2000))
    ours.fit(task)
    np.testing.assert_allclose(ours.alphas_, [a for a, _ in ref], rtol=1e-6)
    X = toy_multisource(n_per_domain=80, target_labeled=4).test.X
    score = sum(a * h.predict(X) for a, h in ref)  # sign(sum_t alpha_t h_t(x))
    np.testing.assert_array_equal(ours.predict(X), (score > 0).astype(int))
    assert ours.alpha_source_ == pytest.approx(0.5 * math.log(1 + math.sqrt(2 * math.log(240) / 8)))


def test_mstradaboost_source_factor_is_tradaboosts_beta():
    a = 0.5 * math.log(1 + math.sqrt(2 * math.log(600) / 20))
    assert math.exp(-2 * a) == pytest.approx(1 / (1 + math.sqrt(2 * math.log(600) / 20)))


def test_mstradaboost_ignores_the_misleading_source():
    accs = {}
    for name in ("mstradaboost", "tradaboost", "source_and_target"):
        scores = []
        for seed in range(3):
            full = toy_multisource(target_labeled=3, seed=seed)
            method = (
                METHODS.get(name)(random_state=seed)
                if name != "source_and_target"
                else (METHODS.get(name)(estimator="linear_svm"))
            )
            method.fit(full.without_test())
            scores.append(np.mean(method.predict(full.test.X) == full.test.y))
            if name == "mstradaboost":
                won = method.diagnostics_["rounds_won"]
                assert won["flipped"] == 0  # the source whose labels contradict the target
        accs[name] = np.mean(scores)
    assert accs["mstradaboost"] > accs["tradaboost"] + 0.1
    assert accs["mstradaboost"] > accs["source_and_target"] + 0.1


def test_round_alpha():
    assert round_alpha(0.2, 2) == pytest.approx(0.5 * math.log(4))
    assert round_alpha(0.5, 2) == 0.0 and round_alpha(0.6, 2) == 0.0
    assert round_alpha(0.6, 10) == pytest.approx(0.5 * (math.log(0.4 / 0.6) + math.log(9)))
    assert round_alpha(0.9, 10) == 0.0
    assert round_alpha(0.0, 2) == pytest.approx(0.5 * math.log((1 - 1e-10) / 1e-10))


# ------------------------------------------------------------------ TaskTrAdaBoost


def _reference_tasktradaboost(task, S, M, gamma, make):
    """Yao & Doretto 2010, Algorithm 2, two classes, labels in {-1, +1}."""
    pool = []
    for d in task.sources:
        X, y = d.X, 2 * d.y - 1
        w = np.ones(len(y)) / len(y)
        for _ in range(S):
            w = w / w.sum()
            h = make().fit(X, y, sample_weight=w * len(y))
            eps = max(np.sum(w * (h.predict(X) != y)), 1e-10)
            if eps >= 0.5:
                break
            alpha = 0.5 * math.log((1 - eps) / eps)
            if alpha > gamma:
                pool.append(h)
            if eps <= 1e-10:
                break
            w = w * np.exp(-alpha * y * h.predict(X))
    labeled = task.target.labeled()
    Xt, yt = labeled.X, 2 * labeled.y - 1
    w = np.ones(len(yt)) / len(yt)
    rounds = []
    for _ in range(M):
        w = w / w.sum()
        errs = [np.sum(w * (h.predict(Xt) != yt)) for h in pool]
        best = int(np.argmin(errs))
        eps = max(errs[best], 1e-10)
        if eps >= 0.5:
            break
        alpha = 0.5 * math.log((1 - eps) / eps)
        rounds.append((alpha, pool[best]))
        if eps <= 1e-10:
            break
        w = w * np.exp(-alpha * yt * pool[best].predict(Xt))
    return pool, rounds


def test_tasktradaboost_is_the_papers_algorithm():
    task = _task(k=5, n_per_domain=80)
    make = lambda: LogisticRegression(C=0.05, max_iter=2000)  # noqa: E731
    pool, ref = _reference_tasktradaboost(task, 6, 10, 0.05, make)
    est = LogisticRegression(C=0.05, max_iter=2000)
    ours = TaskTrAdaBoost(n_estimators=10, source_estimators=6, gamma=0.05, estimator=est)
    ours.fit(task)
    assert len(ours.candidates_) == len(pool)
    np.testing.assert_allclose(ours.alphas_, [a for a, _ in ref], rtol=1e-6)
    X = toy_multisource(n_per_domain=80, target_labeled=5).test.X
    score = sum(a * h.predict(X) for a, h in ref)
    np.testing.assert_array_equal(ours.predict(X), (score > 0).astype(int))


def test_tasktradaboost_gamma_and_bad_input():
    task = _task(k=3, n_per_domain=60)
    with pytest.raises(IncompatibleTaskError, match="nothing to transfer"):
        TaskTrAdaBoost(gamma=1e6).fit(task)
    for key, value in [("n_estimators", 0), ("source_estimators", 1.5), ("gamma", -1)]:
        with pytest.raises(ConfigError, match=key):
            TaskTrAdaBoost(**{key: value}).fit(task)
    with pytest.raises(IncompatibleTaskError, match="labeled target"):
        TaskTrAdaBoost().fit(_task(k=0))


def test_tasktradaboost_transfers_from_the_right_source():
    accs, target_only = [], []
    for seed in range(3):
        full = toy_multisource(target_labeled=3, seed=seed)
        method = TaskTrAdaBoost(random_state=seed).fit(full.without_test())
        accs.append(np.mean(method.predict(full.test.X) == full.test.y))
        assert method.diagnostics_["rounds_won"]["flipped"] == 0
        to = METHODS.get("target_only")(estimator="linear_svm").fit(full.without_test())
        target_only.append(np.mean(to.predict(full.test.X) == full.test.y))
    assert np.mean(accs) > np.mean(target_only) + 0.05


# ------------------------------------------------------------------ best single source


def test_best_single_source_uses_labeled_target_training_samples_only():
    full = toy_multisource(target_labeled=3, seed=1)
    task = full.without_test()
    bss = BestSingleSource(random_state=0).fit(task)
    assert bss.source_ == "near" and bss.criterion_ == "labeled_target"
    # the test labels play no part: permuting them changes nothing
    again = BestSingleSource(random_state=0).fit(
        replace(full, test=replace(full.test, y=full.test.y[::-1])).without_test()
    )
    assert again.scores_ == bss.scores_
    ref = SVC(kernel="linear").fit(task.sources[0].X, task.sources[0].y)
    np.testing.assert_array_equal(bss.predict(full.test.X), ref.predict(full.test.X))


def test_best_single_source_without_labels_uses_the_a_distance():
    bss = BestSingleSource(random_state=0).fit(_task(k=0))
    assert bss.criterion_ == "a_distance"
    dist = {s: v["a_distance"] for s, v in bss.scores_.items()}
    # far barely overlaps the target; flipped has the target's inputs (and the wrong labels:
    # what no unsupervised criterion can see)
    assert dist["far"] > dist["near"] > dist["flipped"] and bss.source_ == "flipped"
    with pytest.raises(IncompatibleTaskError, match="labeled target"):
        BestSingleSource(criterion="labeled_target").fit(_task(k=0))
    with pytest.raises(ConfigError, match="unknown criterion"):
        BestSingleSource(criterion="oracle").fit(_task())


def test_proxy_a_distance_limits():
    rng = np.random.default_rng(0)
    same = proxy_a_distance(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)), 0)
    apart = proxy_a_distance(rng.normal(size=(300, 3)), rng.normal(8, 1, (300, 3)), 0)
    assert same < 0.3 and apart == pytest.approx(2.0)


# ------------------------------------------------------------------ the Gram-matrix SVM


def test_sparse_linear_svm_on_its_gram_matrix_is_the_same_classifier():
    rng = np.random.default_rng(0)
    X = sp.random(300, 50, density=0.1, random_state=1, format="csr")
    y = (X @ rng.normal(size=50) > 0).astype(int)
    w = rng.uniform(0.5, 2, 300)
    fast = fit_linear_svc(SVC(kernel="linear"), X, y, w)
    assert isinstance(fast, PrecomputedLinearSVC)
    plain = SVC(kernel="linear").fit(X, y, sample_weight=w)
    Xn = sp.random(200, 50, density=0.1, random_state=2, format="csr")
    np.testing.assert_array_equal(fast.predict(Xn), plain.predict(Xn))
    np.testing.assert_allclose(fast.decision_function(Xn), plain.decision_function(Xn), atol=1e-6)
    dense = fit_linear_svc(SVC(kernel="linear"), X.toarray(), y)
    assert isinstance(dense, SVC) and dense.kernel == "linear"  # dense: fitted as before
