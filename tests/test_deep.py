"""Deep feature transfer: DDC (mmd), DAN (dan) and the source_only_deep baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlbench.errors import ConfigError
from tlbench.kernels import mk_mmd2, mk_mmd_test_statistics, optimal_kernel_weights
from tlbench.methods.feature.dan import DAN, PAPER_MULTIPLIERS, mk_mmd2_pooled, per_kernel_mmd2
from tlbench.methods.feature.mmd import DDC
from tlbench.methods.feature.source_only_deep import SourceOnlyDeep
from tlbench.registry import DATASETS
from tlbench.trainer import Batch, Trainer


def _batch(features, progress=1.0):
    return Batch(features=features, logits=features[:, :2], layers={"features": features,
                 "logits": features[:, :2]}, progress=progress)  # fmt: skip


@pytest.mark.parametrize("method", [DDC(), DDC(kernel="linear"), DAN(estimator="biased"), DAN()])
def test_losses_zero_for_identical_and_larger_under_shift(method):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 8, generator=g)
    same, _ = method.transfer_loss(_batch(X), _batch(X.clone()))
    assert abs(float(same.detach())) < 1e-6
    Y = (torch.randn(64, 8, generator=g) + 1.5).requires_grad_()
    shifted, _ = method.transfer_loss(_batch(X), _batch(Y))
    assert float(shifted.detach()) > 0.05
    shifted.backward()
    assert Y.grad is not None and Y.grad.abs().sum() > 0  # gradients flow into the features


def test_unbiased_dan_is_near_zero_for_one_distribution():
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randn(128, 8, generator=g), torch.randn(128, 8, generator=g)
    same, _ = DAN(estimator="unbiased").transfer_loss(_batch(X), _batch(Y))
    shifted, _ = DAN(estimator="unbiased").transfer_loss(_batch(X), _batch(Y + 1.5))
    assert abs(float(same)) < 0.02 < float(shifted)


@pytest.mark.parametrize("estimator", ["linear", "unbiased", "biased"])
def test_pooled_mk_mmd_equals_the_kernels_toolkit(estimator):
    X = torch.randn(32, 5, dtype=torch.float64)
    Y = torch.randn(30, 5, dtype=torch.float64) + 0.5
    ref = mk_mmd2(X, Y, bandwidth_multipliers=PAPER_MULTIPLIERS, estimator=estimator)
    fast = mk_mmd2_pooled(X, Y, PAPER_MULTIPLIERS, None, estimator)
    torch.testing.assert_close(fast, ref)


def test_dan_annealing_ramps_the_weight():
    X, Y = torch.randn(32, 4), torch.randn(32, 4) + 1.0
    early, _ = DAN().transfer_loss(_batch(X, 0.0), _batch(Y, 0.0))
    late, _ = DAN().transfer_loss(_batch(X, 1.0), _batch(Y, 1.0))
    assert float(early) == 0.0 and float(late) > 0.0


@pytest.mark.parametrize("estimator", ["linear", "biased"])
def test_learned_kernel_weights_solve_the_program_and_weigh_the_loss(estimator):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(64, 6, generator=g)
    Y = 1.5 * torch.randn(64, 6, generator=g) + 0.4
    dan = DAN(kernel_weights="learned", layers=["features"], anneal=False, estimator=estimator)
    loss, logs = dan.transfer_loss(_batch(X), _batch(Y))
    # beta is the program's solution on this batch's linear-time statistics, rescaled to sum 1
    est, h = per_kernel_mmd2(X, Y, PAPER_MULTIPLIERS, estimator, linear_terms=True)
    beta = optimal_kernel_weights(*mk_mmd_test_statistics(h), eps=1e-3)
    beta = beta / beta.sum()
    learned = dan._beta_state["features"]["beta"]
    np.testing.assert_allclose(learned, beta, atol=1e-12)
    assert learned.sum() == pytest.approx(1.0) and (learned >= 0).all()
    assert np.abs(learned - 1 / len(PAPER_MULTIPLIERS)).max() > 0.05  # far from uniform
    # ... and it is what weighs the per-kernel estimates in the loss
    torch.testing.assert_close(loss, (est * torch.as_tensor(beta, dtype=est.dtype)).sum())
    uniform, _ = DAN(layers=["features"], anneal=False, estimator=estimator).transfer_loss(
        _batch(X), _batch(Y)
    )
    assert abs(float(loss) - float(uniform)) > 1e-3
    assert "beta_log2_bandwidth_features" in logs
    # the loss is differentiable through the features, not through beta
    Xg = X.clone().requires_grad_()
    dan.transfer_loss(_batch(Xg), _batch(Y))[0].backward()
    assert Xg.grad is not None and Xg.grad.abs().sum() > 0


def test_learned_kernel_weights_keep_the_last_beta_when_infeasible():
    X = torch.randn(32, 4)
    dan = DAN(kernel_weights="learned", layers=["features"])
    dan.transfer_loss(_batch(X), _batch(X.clone()))  # every d_u = 0: no feasible beta
    state = dan._beta_state["features"]
    assert state["infeasible"] == 1
    np.testing.assert_allclose(state["beta"], 1 / len(PAPER_MULTIPLIERS))


def test_dan_records_learned_kernel_weights_after_fit():
    task = DATASETS.get("toy_shift")(n_source=80, n_target=80, shift="translation", seed=0)
    tr = Trainer(max_steps=20, batch_size=16, progress_bar=False)
    m = DAN(kernel_weights="learned", random_state=0, hidden=[16], bottleneck_dim=8)
    m.fit(task.without_test(), tr)
    assert set(m.kernel_weights_) == {"features", "logits"}
    for beta in m.kernel_weights_.values():
        assert len(beta) == len(PAPER_MULTIPLIERS) and sum(beta) == pytest.approx(1.0)
    assert m.diagnostics_["kernel_weights"] == m.kernel_weights_
    assert "beta_log2_bandwidth_logits" in m.history_
    with pytest.raises(ConfigError, match="kernel_weights"):
        DAN(kernel_weights="optimal").fit(task.without_test(), tr)
    with pytest.raises(ConfigError, match="kernel weights"):
        DAN(kernel_weights=[1.0, 2.0]).fit(task.without_test(), tr)
    with pytest.raises(ConfigError, match="method.estimator 'quadratic'.*linear, unbiased"):
        DAN(estimator="quadratic").fit(task.without_test(), tr)


def test_unknown_layer_is_a_clear_error():
    task = DATASETS.get("toy_shift")(n_source=60, n_target=60, seed=0)
    with pytest.raises(ConfigError, match="unknown layer.*this network has"):
        DAN(layers=["fc7"]).fit(task.without_test())
    with pytest.raises(ConfigError, match="unknown layer"):
        DDC(layer="bottleneck", bottleneck_dim=0).fit(task.without_test())


def test_xavier_weight_init_is_glorot_uniform_with_zero_biases_and_seeded():
    task = DATASETS.get("toy_images")(n_source=16, n_target=16, seed=0)
    nets = {
        w: SourceOnlyDeep(backbone="lenet", weight_init=w, random_state=0).build_model(task)
        for w in ("default", "xavier")
    }
    layers = [
        m for m in nets["xavier"].modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    assert len(layers) == 5  # conv1, conv2, fc500, the bottleneck and the classifier
    for m in layers:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(m.bias) == 0
    default_bias = nets["default"].backbone.conv[0].bias
    assert torch.count_nonzero(default_bias) > 0  # torch's default draws the biases
    again = SourceOnlyDeep(backbone="lenet", weight_init="xavier", random_state=0).build_model(task)
    same = again.state_dict()
    for k, a in nets["xavier"].state_dict().items():
        assert torch.equal(a, same[k]), k
    with pytest.raises(ConfigError, match="weight_init must be one of default, xavier"):
        SourceOnlyDeep(weight_init="he").fit(task.without_test(), Trainer(max_steps=1))


def test_training_loss_decreases_on_toy_images():
    task = DATASETS.get("toy_images")(n_source=64, n_target=64, seed=0)
    tr = Trainer(max_steps=40, batch_size=16, log_every=10, lr=3e-3)
    m = DAN(random_state=0, bottleneck_dim=32).fit(task.without_test(), tr)
    assert m.history_["cls_loss"][-1] < m.history_["cls_loss"][0]
    assert m.history_["loss"][-1] < m.history_["loss"][0]
    assert m.device_ == "cpu" and m.precision_ == "fp32"
    d = m.diagnostics_
    assert {"steps", "final_loss", "mmd2_features_before", "mmd2_features_after"} <= set(d)


def test_dan_beats_source_only_deep_on_a_shifted_task():
    accs = {}
    for seed in (0, 1):
        task = DATASETS.get("toy_shift")(n_source=200, n_target=200, n_classes=3,
                                         shift="translation", shift_size=3.0, noise=0.0,
                                         seed=seed)  # fmt: skip
        for cls in (SourceOnlyDeep, DAN):
            m = cls(random_state=0, hidden=[64], bottleneck_dim=32)
            m.fit(task.without_test(), Trainer(max_steps=150, batch_size=32, progress_bar=False))
            acc = float(np.mean(m.predict(task.test.X) == task.test.y))
            accs.setdefault(cls.__name__, []).append(acc)
    assert np.mean(accs["DAN"]) > np.mean(accs["SourceOnlyDeep"]) + 0.1, accs


def test_a_collapsed_training_is_flagged(caplog):
    task = DATASETS.get("toy_shift")(n_source=200, n_target=200, n_classes=3, seed=0)
    ok = DDC(random_state=0, hidden=[32], bottleneck_dim=16)
    ok.fit(task.without_test(), Trainer(max_steps=60, batch_size=32, progress_bar=False))
    assert ok.diagnostics_["source_top_class_share"] < 0.6
    bad = DDC(random_state=0, hidden=[32], bottleneck_dim=16, mmd_weight=1e2)
    with caplog.at_level("WARNING", logger="tlbench.methods.deep"):
        bad.fit(task.without_test(), Trainer(max_steps=60, batch_size=32, lr=3.0,
                                             progress_bar=False))  # fmt: skip
    assert bad.diagnostics_["source_top_class_share"] > 0.99
    assert "training collapsed" in caplog.text


def test_domain_weight_reaches_the_classification_loss():
    task = DATASETS.get("toy_shift")(n_source=80, n_target=60, seed=0)
    from dataclasses import replace

    w = (task.source.y == 0).astype(float)  # e.g. KMM weights; here: class 1 weighs nothing
    weighted = replace(task, source=replace(task.source, weight=w)).without_test()
    m = SourceOnlyDeep(random_state=0).fit(weighted, Trainer(max_steps=40, batch_size=16))
    assert np.mean(m.predict(task.test.X) == 0) > 0.9
