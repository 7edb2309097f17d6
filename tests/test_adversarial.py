"""Adversarial deep transfer: gradient reversal, DANN, domain confusion, ADDA, and the trainer's
several-optimiser updates they run on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tlbench.errors import ConfigError
from tlbench.methods.feature._adversarial import grad_reverse, grl_ramp
from tlbench.methods.feature.adda import ADDA
from tlbench.methods.feature.dann import DANN, domain_targets
from tlbench.methods.feature.domain_confusion import DomainConfusion, confusion_loss
from tlbench.methods.feature.source_only_deep import SourceOnlyDeep
from tlbench.task import Domain, TransferTask
from tlbench.trainer import Batch, Trainer, Update

# ------------------------------------------------------------------ building blocks


def test_gradient_reversal_is_identity_forward_and_reverses_scaled_gradients():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64)
    y = grad_reverse(x, 0.37)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.37 * w, atol=0, rtol=0)
    x.grad = None
    (grad_reverse(x, 0.0) * w).sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_grl_schedule_is_the_papers():
    assert grl_ramp(0.0) == 0.0
    assert grl_ramp(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_ramp(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)


def test_confusion_loss_is_minimal_at_a_uniform_domain_prediction():
    uniform = torch.zeros(4, 2, requires_grad=True)
    loss = confusion_loss(uniform)
    assert float(loss.detach()) == pytest.approx(math.log(2))
    loss.backward()
    assert torch.allclose(uniform.grad, torch.zeros(4, 2), atol=1e-7)
    rng = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = 3 * torch.randn(4, 2, generator=rng)
        assert float(confusion_loss(logits)) > math.log(2)


def test_labeled_target_rows_count_as_target_for_the_domain_classifier():
    src = Batch(torch.zeros(4, 2), torch.zeros(4, 3), domain=torch.tensor([0, 1, 0, 1]))
    tgt = Batch(torch.zeros(3, 2), torch.zeros(3, 3))
    assert domain_targets(src, tgt, 1).tolist() == [0, 1, 0, 1, 1, 1, 1]
    assert domain_targets(src, tgt, None).tolist() == [0, 0, 0, 0, 1, 1, 1]


# ------------------------------------------------------------------ the trainer's updates


def _toy_net(seed=0):
    from tlbench.backbones import create_backbone
    from tlbench.methods.deep import DeepNet

    torch.manual_seed(seed)
    return DeepNet(create_backbone("mlp", num_classes=2, in_shape=(4,), hidden=(8,)), 2, 0)


def _blobs(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return (rng.normal(0, 1, (n, 4)) + 2.0 * y[:, None]).astype(np.float32), y


def test_each_update_moves_only_its_own_parameters():
    X, y = _blobs()
    net = _toy_net()
    frozen = {k: v.clone() for k, v in net.classifier.state_dict().items()}
    head = list(net.classifier.parameters())
    body = [p for n, p in net.named_parameters() if not n.startswith("classifier.")]

    def pull_logits(src, tgt):  # reads the classifier, but only the body may move by it
        return src.logits.pow(2).mean()

    Trainer(max_steps=5, batch_size=16, progress_bar=False).fit(
        net, Domain(X, y), updates=[Update("body", body, pull_logits)]
    )
    for k, v in net.classifier.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert head  # the classifier exists and was left alone


def test_simultaneous_updates_take_every_gradient_before_any_step():
    X, y = _blobs()
    a, b = _toy_net(), _toy_net()
    body = [p for n, p in a.named_parameters() if not n.startswith("classifier.")]
    head = list(a.classifier.parameters())
    # two updates of disjoint parameters on one loss == one update of both (plain SGD)
    opts = dict(max_steps=3, batch_size=16, progress_bar=False, momentum=0.0, weight_decay=0.0,
                schedule="constant")  # fmt: skip
    Trainer(**opts).fit(a, Domain(X, y), updates=[Update("body", body), Update("head", head)])
    Trainer(**opts).fit(b, Domain(X, y))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k


def test_update_windows_and_names_are_checked():
    X, y = _blobs()
    net = _toy_net()
    ps = list(net.parameters())
    tr = Trainer(max_steps=10, batch_size=16, progress_bar=False)
    with pytest.raises(ConfigError, match="distinct names"):
        tr.fit(net, Domain(X, y), updates=[Update("a", ps), Update("a", ps)])
    with pytest.raises(ConfigError, match=r"steps \[5, 20\)"):
        tr.fit(net, Domain(X, y), updates=[Update("a", ps, stop=5), Update("b", ps, start=5,
                                                                           stop=20)])  # fmt: skip
    with pytest.raises(ConfigError, match="no update is active at training step 5"):
        tr.fit(net, Domain(X, y), updates=[Update("a", ps, stop=5), Update("b", ps, start=7)])
    with pytest.raises(ConfigError, match="unknown optimizer"):
        tr.fit(net, Domain(X, y), updates=[Update("a", ps, optimizer="lbfgs")])
    with pytest.raises(ConfigError, match="either updates or extra_loss"):
        tr.fit(net, Domain(X, y), params=ps, updates=[Update("a", ps)])


# ------------------------------------------------------------------ the methods

#: small networks: the methods' defaults are sized for images and long schedules
SMALL = dict(hidden=[32], bottleneck_dim=16)


def shifted_task(seed=0, n=300, shift=3.0, labeled_per_class=0):
    """Two classes told apart by x0 and x1 alike; the target's x1 is moved by ``shift``.

    A source network reads both features and is fooled by the moved one (~60 % on the
    target); a network whose features do not tell the domains apart reads x0 only (~95 %).
    """
    rng = np.random.default_rng(seed)

    def make(m, off):
        y = rng.integers(0, 2, m)
        X = rng.normal(0, 0.6, (m, 4))
        X[:, 0] += 2.0 * y - 1.0
        X[:, 1] += 2.0 * y - 1.0 + off
        return X.astype(np.float32), y

    (Xs, ys), (Xt, yt) = make(n, 0.0), make(n, shift)
    yl = np.full(n, -1)
    for c in (0, 1):
        yl[np.flatnonzero(yt == c)[:labeled_per_class]] = c
    target = Domain(Xt, yl if labeled_per_class else None, name="t")
    return TransferTask(Domain(Xs, ys, name="s"), target, Domain(Xt, yt, name="t"), "tabular",
                        2, "transductive")  # fmt: skip


def _fit(method, seed=0, steps=400, task=None, **trainer):
    task = task or shifted_task(seed)
    method.fit(task.without_test(), Trainer(max_steps=steps, seed=seed, progress_bar=False,
                                            **trainer))  # fmt: skip
    return float(np.mean(method.predict(task.test.X) == task.test.y)), method


@pytest.mark.parametrize("cls", [DANN, ADDA])
def test_dann_and_adda_beat_source_only_on_a_shifted_toy_task(cls):
    steps = 800 if cls is ADDA else 400  # half of ADDA's steps pre-train the source network
    for seed in (0, 1):
        base, _ = _fit(SourceOnlyDeep(random_state=seed, **SMALL), seed, steps)
        acc, m = _fit(cls(random_state=seed, discriminator_hidden=[32], **SMALL), seed, steps)
        assert acc > base + 0.1, (seed, acc, base)
        assert "source_top_class_share" in m.diagnostics_  # collapse is detected and recorded


def test_domain_confusion_with_soft_labels_beats_source_only_with_the_same_labels():
    for seed in (0, 1):
        task = shifted_task(seed, labeled_per_class=3)
        base, _ = _fit(SourceOnlyDeep(random_state=seed, **SMALL), seed, 800, task)
        acc, m = _fit(DomainConfusion(random_state=seed, **SMALL), seed, 800, task)
        assert acc > base + 0.03, (seed, acc, base)
        assert "source_top_class_share" in m.diagnostics_


def test_dann_reports_its_domain_classifier_and_lambda():
    _, m = _fit(DANN(random_state=0, **SMALL), steps=100)
    lam = m.history_["grl_lambda"]
    assert lam[0] < lam[-1] <= 1.0  # the ramp
    assert 0.0 <= m.diagnostics_["final_domain_acc"] <= 1.0
    assert "domain_classifier.net.0.weight" in m.model_.state_dict()


def test_domain_confusion_uses_soft_labels_of_the_source_for_labeled_target_samples():
    task = shifted_task(0, labeled_per_class=3)
    _, m = _fit(DomainConfusion(random_state=0, **SMALL), steps=100, task=task)
    assert m.history_.get("soft_label_loss"), "labeled target samples give a soft-label loss"
    assert np.allclose(m.soft_labels_.sum(1), 1.0)
    # tempered source softmax: the class's own entry dominates its soft label
    assert (m.soft_labels_.argmax(1) == np.arange(2)).all()
    _, plain = _fit(DomainConfusion(random_state=0, **SMALL), steps=50)
    assert not plain.history_.get("soft_label_loss")


def test_domain_confusion_pretraining_trains_the_classifier_alone_first(monkeypatch):
    seen = {}
    wrap = DomainConfusion._wrap_model
    network_loss, domain_loss = DomainConfusion._network_loss, DomainConfusion._domain_loss

    def wrap_spy(self, model, task):
        out = wrap(self, model, task)
        seen["init"] = {k: v.clone() for k, v in model.domain_classifier.state_dict().items()}
        return out

    def net_spy(self, source, target):
        seen.setdefault("net_steps", []).append(source.step)
        return network_loss(self, source, target)

    def disc_spy(self, source, target):
        if "disc" not in seen:
            state = self._net.domain_classifier.state_dict()
            seen["disc"] = {k: v.clone() for k, v in state.items()}
        return domain_loss(self, source, target)

    monkeypatch.setattr(DomainConfusion, "_wrap_model", wrap_spy)
    monkeypatch.setattr(DomainConfusion, "_network_loss", net_spy)
    monkeypatch.setattr(DomainConfusion, "_domain_loss", disc_spy)
    m = DomainConfusion(random_state=0, pretrain_steps=0.4, adversarial_lr=2e-4,
                        discriminator_hidden=[16], **SMALL)  # fmt: skip
    _, m = _fit(m, steps=50)
    assert m.diagnostics_["pretrain_steps"] == 20
    assert min(seen["net_steps"]) == 20 and len(seen["net_steps"]) == 30
    for k, v in seen["disc"].items():  # untouched by the 20 pre-training steps
        assert torch.equal(v, seen["init"][k]), k
    assert not torch.equal(m.model_.domain_classifier.net[0].weight, seen["init"]["net.0.weight"])
    opts = {u.name: u for u in m.updates(m.model_, [{"params": list(m.model_.parameters())}])}
    assert set(opts) == {"pretrain", "network", "domain_classifier"}
    assert opts["network"].lr == 2e-4 and opts["network"].betas == (0.5, 0.999)
    assert opts["pretrain"].stop == 20 and opts["domain_classifier"].start == 20


def test_domain_confusion_refuses_impossible_phases_and_adam_settings():
    task = shifted_task(0).without_test()
    with pytest.raises(ConfigError, match="the phase after it needs at least one step"):
        DomainConfusion(pretrain_steps=50).fit(task, Trainer(max_steps=50, progress_bar=False))
    with pytest.raises(ConfigError, match="adversarial_betas must be two numbers"):
        DomainConfusion(adversarial_betas=[0.5]).fit(task, Trainer(max_steps=5, progress_bar=False))
    with pytest.raises(ConfigError, match="adversarial_lr must be > 0"):
        DomainConfusion(adversarial_lr=0.0).fit(task, Trainer(max_steps=5, progress_bar=False))


def test_adda_freezes_the_source_network_in_the_adversarial_phase(monkeypatch):
    seen = {}
    init = ADDA._init_target

    def snapshot(self):
        seen["source"] = {k: v.clone() for k, v in self._net.source.state_dict().items()}
        init(self)
        seen["target"] = {k: v.clone() for k, v in self._net.target.state_dict().items()}

    monkeypatch.setattr(ADDA, "_init_target", snapshot)
    _, m = _fit(ADDA(random_state=0, pretrain_steps=40, layer="features", **SMALL), steps=100)
    net = m.model_
    for k, v in net.source.state_dict().items():
        assert torch.equal(v, seen["source"][k]), k  # M_s and C never moved after pre-training
    assert all(torch.equal(seen["target"][k], seen["source"][k]) for k in seen["source"])
    moved = [k for k, v in net.target.state_dict().items() if not torch.equal(v, seen["target"][k])]
    assert moved and not any(k.startswith("classifier.") for k in moved)  # M_t moved, C kept
    assert m.diagnostics_["pretrain_steps"] == 40
    # source samples go through M_s, target samples through M_t
    X = shifted_task(0).source.X[:20]
    net.encoder = "source"
    ps = m.predict(X)
    net.encoder = "target"
    assert np.array_equal(m.predict_source(X), ps)


def test_adda_refuses_impossible_phases_and_a_trainer_selection():
    task = shifted_task(0).without_test()
    with pytest.raises(ConfigError, match="both phases need at least one step"):
        ADDA(pretrain_steps=50).fit(task, Trainer(max_steps=50, progress_bar=False))
    with pytest.raises(ConfigError, match="trainer.selection must be last"):
        ADDA().fit(task, Trainer(max_steps=50, selection="source_val", progress_bar=False))


class _Kill(Exception):
    pass


def _resumed_equals_uninterrupted(tmp_path, monkeypatch, cls, kw, kill_at, optimizers, extra=None):
    """Kill a 30-step run at ``kill_at`` (in ``cls._<loss>``), resume it, compare the weights."""
    task = shifted_task(0).without_test()
    opts = dict(max_steps=30, batch_size=16, checkpoint_every=5, deterministic=True,
                progress_bar=False)  # fmt: skip
    full = cls(**kw)
    full.fit(task, Trainer(**opts, output_dir=str(tmp_path / "a")))
    name = "_discriminator_loss" if cls is ADDA else "_domain_loss"
    loss = getattr(cls, name)

    def dies(self, source, target):
        if source.step == kill_at:
            raise _Kill
        return loss(self, source, target)

    with monkeypatch.context() as mp:
        mp.setattr(cls, name, dies)
        if extra:
            extra(mp)
        with pytest.raises(_Kill):
            cls(**kw).fit(task, Trainer(**opts, output_dir=str(tmp_path / "b")))
    ck = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert set(ck["optimizers"]) == optimizers
    resumed = cls(**kw)
    resumed.fit(task, Trainer(**opts, output_dir=str(tmp_path / "b"), resume=True))
    assert resumed.diagnostics_["resumed_from_step"] == ck["step"]
    a, b = full.model_.state_dict(), resumed.model_.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("kill_at", [13, 23])  # before and after the switch to adversarial
def test_adda_resumed_after_a_kill_equals_an_uninterrupted_run(tmp_path, monkeypatch, kill_at):
    def kill_in_pretraining(mp):  # the pre-training phase has no discriminator loss
        mp.setattr(ADDA, "_init_target", lambda self: (_ for _ in ()).throw(_Kill()))

    _resumed_equals_uninterrupted(
        tmp_path, monkeypatch, ADDA, dict(random_state=0, pretrain_steps=12, **SMALL), kill_at,
        {"source", "target_encoder", "discriminator"},
        kill_in_pretraining if kill_at < 12 else None,
    )  # fmt: skip


@pytest.mark.parametrize("kill_at", [13, 23])  # resumed from the pre-training phase and after it
def test_domain_confusion_with_pretraining_resumed_equals_an_uninterrupted_run(
    tmp_path, monkeypatch, kill_at
):
    kw = dict(random_state=0, pretrain_steps=12, adversarial_lr=1e-3, **SMALL)
    _resumed_equals_uninterrupted(tmp_path, monkeypatch, DomainConfusion, kw, kill_at,
                                  {"pretrain", "network", "domain_classifier"})  # fmt: skip


# ------------------------------------------------------------------ CDAN and MCC


def test_mcc_loss_is_zero_for_confident_distinct_classes_and_penalises_confusion():
    from tlbench.methods.feature.mcc import mcc_loss

    onehot = 50.0 * torch.eye(3).repeat(4, 1)  # every sample certain, every class present
    assert float(mcc_loss(onehot, 1.0)) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(12, 3)  # every sample spread over all classes: C~ = 1/3 everywhere
    assert float(mcc_loss(uniform, 1.0)) == pytest.approx(2 / 3)
    # by hand: one sample split between two classes, the other certain
    z = torch.tensor([[0.0, 0.0], [30.0, -30.0]])
    p = torch.softmax(z, 1)
    h = -(p * p.clamp_min(1e-12).log()).sum(1)
    w = 2 * (1 + torch.exp(-h)) / (1 + torch.exp(-h)).sum()
    c = (p * w[:, None]).T @ p
    c = c / c.sum(0, keepdim=True)
    assert float(mcc_loss(z, 1.0)) == pytest.approx(float((c.sum() - c.trace()) / 2))
    g = torch.randn(8, 4, requires_grad=True)
    mcc_loss(g).backward()
    assert torch.isfinite(g.grad).all() and g.grad.abs().sum() > 0


def test_cdan_multilinear_and_randomized_maps():
    from tlbench.methods.feature.cdan import entropy_weights, multilinear_map, randomized_map

    f, g = torch.randn(5, 3), torch.softmax(torch.randn(5, 4), 1)
    t = multilinear_map(f, g)
    assert t.shape == (5, 12)
    assert torch.allclose(t.view(5, 4, 3), g[:, :, None] * f[:, None, :])
    # the randomized map's inner products estimate the multilinear map's (E[R^T R] = d I)
    torch.manual_seed(0)
    d = 20000
    r = randomized_map(f, g, torch.randn(d, 3), torch.randn(d, 4))
    assert torch.allclose(r @ r.T, t @ t.T, rtol=0.1, atol=0.05)
    w = entropy_weights(g, torch.tensor([0.0, 0, 1, 1, 1]))
    assert float(w[:2].sum()) == pytest.approx(1.0) and float(w[2:].sum()) == pytest.approx(1.0)
    certain = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    wc = entropy_weights(certain, torch.zeros(2))
    assert wc[0] > wc[1]  # the certain prediction counts more


@pytest.mark.parametrize("name", ["cdan", "mcc"])
def test_cdan_and_mcc_beat_source_only_on_a_shifted_toy_task(name):
    from tlbench.methods.feature.cdan import CDAN
    from tlbench.methods.feature.mcc import MCC

    for seed in (0, 1):
        base, _ = _fit(SourceOnlyDeep(random_state=seed, **SMALL), seed)
        if name == "cdan":
            method = CDAN(random_state=seed, discriminator_hidden=[32], **SMALL)
        else:
            method = MCC(random_state=seed, **SMALL)
        acc, m = _fit(method, seed)
        assert acc > base + 0.1, (seed, acc, base)
        assert "source_top_class_share" in m.diagnostics_


def test_cdan_picks_the_randomized_map_above_the_bound_and_checks_its_parameters():
    from tlbench.methods.feature.cdan import CDAN

    _, m = _fit(CDAN(random_state=0, max_multilinear=8, random_dim=24, **SMALL), steps=20)
    assert m.diagnostics_["conditioning"] == "randomized"  # 16 features x 2 classes > 8
    assert m.model_.cdan_rf.shape == (24, 16)
    _, m = _fit(CDAN(random_state=0, **SMALL), steps=20)
    assert m.diagnostics_["conditioning"] == "multilinear"
    with pytest.raises(ConfigError, match="random_dim"):
        _fit(CDAN(random_dim=0, **SMALL), steps=5)
    from tlbench.methods.feature.mcc import MCC

    with pytest.raises(ConfigError, match="temperature"):
        _fit(MCC(temperature=0, **SMALL), steps=5)
