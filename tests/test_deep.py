"""Deep feature transfer: DDC (mmd), DAN (dan) and the source_only_deep baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlbench.errors import ConfigError
from tlbench.kernels import mk_mmd2
from tlbench.methods.feature.dan import DAN, PAPER_MULTIPLIERS, mk_mmd2_pooled
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


def test_unknown_layer_is_a_clear_error():
    task = DATASETS.get("toy_shift")(n_source=60, n_target=60, seed=0)
    with pytest.raises(ConfigError, match="unknown layer.*this network has"):
        DAN(layers=["fc7"]).fit(task.without_test())
    with pytest.raises(ConfigError, match="unknown layer"):
        DDC(layer="bottleneck", bottleneck_dim=0).fit(task.without_test())


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


def test_domain_weight_reaches_the_classification_loss():
    task = DATASETS.get("toy_shift")(n_source=80, n_target=60, seed=0)
    from dataclasses import replace

    w = (task.source.y == 0).astype(float)  # e.g. KMM weights; here: class 1 weighs nothing
    weighted = replace(task, source=replace(task.source, weight=w)).without_test()
    m = SourceOnlyDeep(random_state=0).fit(weighted, Trainer(max_steps=40, batch_size=16))
    assert np.mean(m.predict(task.test.X) == 0) > 0.9
