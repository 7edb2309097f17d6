"""Selection protocols: the scores behave as documented."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tlbench import ConfigError
from tlbench.datasets.toy import toy_shift
from tlbench.errors import IncompatibleTaskError
from tlbench.methods.baseline import SourceOnly
from tlbench.selection import (
    density_ratio,
    dev_score,
    entropy_score,
    iwv_score,
    score_all,
    split_source,
)
from tlbench.task import Domain


def test_source_split_is_stratified_and_seeded():
    task = toy_shift(n_source=100, n_classes=2, seed=0)
    train, val = split_source(task, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert set(np.unique(val.y)) == {0, 1}
    again = split_source(task, 0.2, seed=3)[1]
    np.testing.assert_array_equal(val.X, again.X)
    with pytest.raises(ConfigError, match="val_fraction"):
        split_source(task, 1.0, seed=0)


def test_density_ratio_is_larger_near_the_target():
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(0, 1, (400, 2)), rng.normal(2, 1, (400, 2))
    ratio = density_ratio(Xs, Xt)
    near, far = ratio(np.array([[2.0, 2.0]])), ratio(np.array([[-2.0, -2.0]]))
    assert near[0] > 10 * far[0]
    assert 0.3 < ratio(Xs).mean() < 3  # about 1 on the source, as p_t / p_s should


def test_scores_equal_hand_computed_values():
    # correct = [1, 0, 1, 1], w = [3, 1, 0.5, 0.5]: sum w = 5, sum w * correct = 4
    correct = np.array([1, 0, 1, 1], dtype=float)
    w = np.array([3.0, 1.0, 0.5, 0.5])
    assert iwv_score(correct, w) == pytest.approx(4 / 5, abs=1e-15)
    # DEV (You et al. 2019): w l = [0, 1, 0, 0], mean 1/4; mean(w) = 5/4;
    # Var(w) = 4.25 / 3, Cov(w l, w) = -0.25 / 3 (both ddof=1), eta = -Cov / Var = 1/17;
    # risk = 1/4 + (1/17) (5/4 - 1) = 9/34
    assert dev_score(correct, w) == pytest.approx(-9 / 34, abs=1e-15)
    # entropy in nats: rows 0.5/0.5 (ln 2), 0.9/0.1, 1/0 (0, up to the 1e-12 clip)
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    h = np.log(2) + 0.9 * np.log(1 / 0.9) + 0.1 * np.log(10)
    assert entropy_score(proba) == pytest.approx(-h / 3, abs=1e-10)


def test_density_ratio_is_rescaled_by_the_domain_sizes():
    # one distribution, four times more target samples: the odds P(t|x)/P(s|x) are about 4
    # and p_t/p_s about 1; fails if the n_s/n_t prior is left out or inverted (4 or 16)
    rng = np.random.default_rng(1)
    Xs, Xt = rng.normal(size=(300, 2)), rng.normal(size=(1200, 2))
    ratio = density_ratio(Xs, Xt)(rng.normal(size=(500, 2)))
    assert 0.8 < ratio.mean() < 1.25 and ratio.max() < 2


def test_iwv_and_dev_reduce_to_accuracy_with_equal_weights():
    correct = np.array([1, 0, 1, 1], dtype=float)
    w = np.ones(4)
    assert iwv_score(correct, w) == pytest.approx(0.75)
    assert dev_score(correct, w) == pytest.approx(0.75 - 1.0)  # minus the 0/1 risk


def test_iwv_counts_target_like_samples_more():
    correct = np.array([1.0, 0.0])
    assert iwv_score(correct, np.array([9.0, 1.0])) == pytest.approx(0.9)


def test_dev_control_variate_is_unbiased_for_a_constant_loss():
    rng = np.random.default_rng(0)
    w = rng.exponential(1.0, 500)
    correct = np.zeros(500)  # loss 1 everywhere: the risk is exactly 1 whatever the weights
    assert dev_score(correct, w) == pytest.approx(-1.0)


def test_entropy_prefers_confident_predictions():
    confident = np.array([[0.99, 0.01], [0.02, 0.98]])
    uniform = np.full((2, 2), 0.5)
    assert entropy_score(confident) > entropy_score(uniform) == pytest.approx(-np.log(2))


def test_score_all_scores_every_protocol_with_one_held_out_fit():
    task = toy_shift(n_source=120, n_target=120, seed=4)
    method = SourceOnly(random_state=0).fit(task.without_test())
    acc = float(np.mean(method.predict(task.test.X) == task.test.y))
    fits = []

    def make():
        fits.append(1)
        return SourceOnly(random_state=0)

    scores, info = score_all(
        "source_val",
        task=task,
        method=method,
        make_method=make,
        trainer=None,
        test_accuracy=acc,
        val_fraction=0.25,
        seed=0,
    )
    assert len(fits) == 1 and info["n_val"] == 30
    assert set(scores) == {"source_val", "iwv", "dev", "entropy", "oracle"}
    assert scores["oracle"] == acc
    # every score recomputed: a scorer fitted without the held-out source samples, scored on
    # them, weighted by the ratio fitted on (train, target training samples); the entropy of
    # the reported model on the target training samples (never the test samples)
    train, val = split_source(task, 0.25, seed=0)
    scorer = SourceOnly(random_state=0).fit(replace(task, source=train, test=None))
    correct = (scorer.predict(val.X) == val.y).astype(float)
    weight = density_ratio(train.X, task.target.X, 0)(val.X)
    assert scores["source_val"] == pytest.approx(correct.mean(), abs=1e-15)
    assert scores["iwv"] == pytest.approx(np.sum(weight * correct) / np.sum(weight), rel=1e-12)
    loss = 1 - correct
    eta = -np.cov(weight * loss, weight)[0, 1] / np.var(weight, ddof=1)
    risk = np.mean(weight * loss) + eta * (np.mean(weight) - 1)
    assert scores["dev"] == pytest.approx(-risk, rel=1e-12)
    p = np.clip(method.predict_proba(task.target.X), 1e-12, 1)
    assert scores["entropy"] == pytest.approx(np.mean(np.sum(p * np.log(p), 1)), rel=1e-12)
    # the premise: scoring the reported model (trained on val too) or the entropy on the test
    # samples would give other values
    assert np.mean(method.predict(val.X) == val.y) != scores["source_val"]
    p_test = np.clip(method.predict_proba(task.test.X), 1e-12, 1)
    assert abs(np.mean(np.sum(p_test * np.log(p_test), 1)) - scores["entropy"]) > 1e-6
    none, _ = score_all(
        "none",
        task=task,
        method=method,
        make_method=make,
        trainer=None,
        test_accuracy=acc,
        val_fraction=0.25,
        seed=0,
    )
    assert none == {} and len(fits) == 1


def test_unknown_protocol():
    task = toy_shift(n_source=60, n_target=60)
    with pytest.raises(ConfigError, match="unknown selection 'best'"):
        score_all(
            "best",
            task=task,
            method=None,
            make_method=None,
            trainer=None,
            test_accuracy=0.0,
            val_fraction=0.2,
            seed=0,
        )


def test_report_can_select_with_any_recorded_protocol():
    from tlbench.report import as_protocol, select

    def rec(acc, scores):
        return {
            "status": "ok",
            "method": "m",
            "dataset": "d",
            "protocol": "p",
            "source": "a",
            "target": "b",
            "seed": 0,
            "metrics": {"accuracy": acc},
            "config": {"dataset": {}},
            "selection": "source_val",
            "selection_score": scores["source_val"],
            "selection_scores": scores,
        }

    runs = [
        rec(0.6, {"source_val": 0.9, "oracle": 0.6}),
        rec(0.8, {"source_val": 0.7, "oracle": 0.8}),
    ]
    assert [r["metrics"]["accuracy"] for r in select(as_protocol(runs, None))[0]] == [0.6]
    assert [r["metrics"]["accuracy"] for r in select(as_protocol(runs, "oracle"))[0]] == [0.8]
    both = select(as_protocol(runs, "all"))[0]
    assert sorted((r["selection"], r["metrics"]["accuracy"]) for r in both) == [
        ("oracle", 0.8),
        ("source_val", 0.6),
    ]


def _score(name, task, method, make):
    """``score_all`` of a toy run: no trainer, a quarter of the source held out, seed 0."""
    return score_all(name, task=task, method=method, make_method=make, trainer=None,
                     test_accuracy=0.5, val_fraction=0.25, seed=0)  # fmt: skip


def test_reverse_validation_scores_the_reverse_model_on_held_out_source():
    task = toy_shift(n_source=120, n_target=120, seed=4)
    method = SourceOnly(random_state=0).fit(task.without_test())
    fits = []

    def make():
        fits.append(1)
        return SourceOnly(random_state=0)

    scores, info = _score("reverse", task, method, make)
    assert len(fits) == 2  # the held-out fit and the reverse fit
    # recomputed: forward model without val, its target predictions as labels, a fresh model
    # on (pseudo-labeled target -> unlabeled train), scored on val
    train, val = split_source(task, 0.25, seed=0)
    forward = SourceOnly(random_state=0).fit(replace(task, source=train, test=None))
    pseudo = forward.predict(task.target.X)
    assert info["reverse_pseudo_label_counts"] == np.bincount(pseudo, minlength=2).tolist()
    reverse = SourceOnly(random_state=0).fit(
        replace(
            task, source=Domain(X=task.target.X, y=pseudo), target=train.unlabeled(), test=None
        )  # fmt: skip
    )
    expected = np.mean(reverse.predict(val.X) == val.y)
    assert scores["reverse"] == pytest.approx(expected, abs=1e-15)
    # the premise: the reverse model differs from the forward one on val
    assert np.mean(forward.predict(val.X) == val.y) != scores["reverse"]
    # the other protocols never pay for the reverse fit
    fits.clear()
    plain, _ = _score("source_val", task, method, make)
    assert len(fits) == 1 and "reverse" not in plain


def test_reverse_validation_keeps_given_target_labels_and_says_when_it_cannot_score():
    task = toy_shift(n_source=80, n_target=80, seed=1)
    y_t = np.full(len(task.target), -1)
    y_t[:5] = 1 - task.test.y[:5]  # given labels that the forward model would not predict
    partly = replace(task, target=replace(task.target, y=y_t))
    method = SourceOnly(random_state=0).fit(partly.without_test())
    seen = {}

    class Spy(SourceOnly):
        def fit(self, t, trainer=None):
            if t.source.name.endswith("(pseudo-labeled)"):
                seen["y"] = t.source.y.copy()
            return super().fit(t, trainer)

    _score("reverse", partly, method, lambda: Spy(random_state=0))
    np.testing.assert_array_equal(seen["y"][:5], y_t[:5])

    class Refuses(SourceOnly):
        def fit(self, t, trainer=None):
            if t.source.name.endswith("(pseudo-labeled)"):
                raise IncompatibleTaskError("needs labeled target samples")
            return super().fit(t, trainer)

    scores, info = _score("reverse", task, method, lambda: Refuses(random_state=0))
    assert scores["reverse"] is None and "needs labeled target samples" in info["reverse"]
    assert scores["source_val"] is not None
