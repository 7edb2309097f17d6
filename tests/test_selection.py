"""Selection protocols: the scores behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from tlbench import ConfigError
from tlbench.datasets.toy import toy_shift
from tlbench.methods.baseline import SourceOnly
from tlbench.selection import (
    density_ratio,
    dev_score,
    entropy_score,
    iwv_score,
    score_run,
    split_source,
)


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


@pytest.mark.parametrize("name", ["source_val", "iwv", "dev", "entropy", "oracle", "none"])
def test_score_run_every_protocol(name):
    task = toy_shift(n_source=120, n_target=120, seed=0)
    method = SourceOnly(random_state=0).fit(task.without_test())
    acc = float(np.mean(method.predict(task.test.X) == task.test.y))
    score, info = score_run(
        name,
        task=task,
        method=method,
        make_method=lambda: SourceOnly(random_state=0),
        trainer=None,
        test_accuracy=acc,
        val_fraction=0.25,
        seed=0,
    )
    if name == "none":
        assert score is None
    elif name == "oracle":
        assert score == acc and info["uses_target_test_labels"]
    elif name == "entropy":
        assert -np.log(2) <= score <= 0
    else:
        assert np.isfinite(score) and info["n_val"] == 30
        if name == "source_val":
            assert 0 <= score <= 1


def test_unknown_protocol():
    task = toy_shift(n_source=60, n_target=60)
    with pytest.raises(ConfigError, match="unknown selection 'best'"):
        score_run(
            "best",
            task=task,
            method=None,
            make_method=None,
            trainer=None,
            test_accuracy=0.0,
            val_fraction=0.2,
            seed=0,
        )
