"""The trainer: devices, precision, data streams, schedules, weights, checkpoints, DDP."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tlbench.errors import ConfigError, DataError
from tlbench.methods.deep import DeepNet
from tlbench.task import Domain
from tlbench.trainer import Batch, NonFiniteLossError, Trainer, _IndexStream, resolve_device

REPO = Path(__file__).resolve().parents[1]


def _blobs(n=64, d=6, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 1, (n, d)).astype(np.float32) + 2.0 * y[:, None] + shift
    return X.astype(np.float32), y.astype(np.int64)


def _net(d=6, dropout=0.0, seed=0):
    from tlbench.backbones import create_backbone

    torch.manual_seed(seed)
    return DeepNet(create_backbone("mlp", num_classes=2, in_shape=(d,), hidden=(16,)), 2, 8,
                   dropout)  # fmt: skip


def _mmd_loss(src: Batch, tgt: Batch):
    return (src.features.mean(0) - tgt.features.mean(0)).pow(2).sum()


# ------------------------------------------------------------------ configuration errors


def test_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type in {"cpu", "mps"}
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")


def test_incompatible_precision_and_unknown_names():
    X, y = _blobs()
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        Trainer(precision="fp16").fit(_net(), Domain(X, y))
    with pytest.raises(ConfigError, match="unknown optimizer"):
        Trainer(optimizer="lbfgs").fit(_net(), Domain(X, y))
    with pytest.raises(ConfigError, match="unknown schedule"):
        Trainer(schedule="step").fit(_net(), Domain(X, y))
    with pytest.raises(ConfigError, match="target_entropy needs unlabeled target"):
        Trainer(selection="target_entropy").fit(_net(), Domain(X, y))


def test_batch_larger_than_a_domain():
    X, y = _blobs(n=20)
    with pytest.raises(DataError, match="larger than the unlabeled domain"):
        Trainer(batch_size=16).fit(_net(), Domain(X, y), Domain(X[:10]), extra_loss=_mmd_loss)


# ------------------------------------------------------------------ data streams and schedules


def test_index_stream_covers_each_pass_and_resumes():
    s = _IndexStream(10, 3, seed=5)
    first = [next(s) for _ in range(3)]  # one pass: 3 full batches, the last sample dropped
    assert len(torch.cat(first).unique()) == 9
    state = s.state()
    later = [next(s) for _ in range(4)]
    t = _IndexStream(10, 3, seed=5)
    t.load_state(state)
    assert all(torch.equal(a, b) for a, b in zip(later, [next(t) for _ in range(4)], strict=True))
    # ranks split the same global batch
    r0, r1 = _IndexStream(10, 4, 5, 0, 2), _IndexStream(10, 4, 5, 1, 2)
    g = next(_IndexStream(10, 4, 5))
    assert sorted(torch.cat([next(r0), next(r1)]).tolist()) == sorted(g.tolist())


def test_dan_schedule_and_parameter_group_lrs():
    tr = Trainer(schedule="dan", max_steps=100, lr=0.01)
    for step in (0, 30, 100):
        p = step / 100
        assert tr._lr_lambda(step) == pytest.approx((1 + 10 * p) ** -0.75)
    X, y = _blobs()
    model = _net()
    groups = [
        {"params": list(model.backbone.parameters()), "lr_mult": 0.1},
        {"params": list(model.classifier.parameters())},
    ]
    tr = Trainer(schedule="dan", max_steps=4, lr=0.01, optimizer="sgd", batch_size=16, log_every=1)
    hist = tr.fit(model, Domain(X, y), params=groups)
    assert hist["lr"][0] == pytest.approx(0.1 * 0.01)  # group 0 carries the multiplier
    assert hist["lr"][-1] == pytest.approx(0.001 * (1 + 10 * 3 / 4) ** -0.75)


def test_history_and_loss_decreases():
    X, y = _blobs(n=96)
    Xt, _ = _blobs(n=96, shift=1.0, seed=1)
    tr = Trainer(max_steps=60, batch_size=16, log_every=10, lr=1e-2)
    hist = tr.fit(_net(), Domain(X, y), Domain(Xt), extra_loss=_mmd_loss)
    assert hist["step"] == [10, 20, 30, 40, 50, 60]
    assert {"loss", "cls_loss", "transfer_loss", "lr"} <= set(hist)
    assert hist["cls_loss"][-1] < hist["cls_loss"][0]
    assert tr._progress(0) is None  # no progress bar when stderr is not a terminal


def test_sample_weight_from_domain_weight():
    X, y = _blobs(n=96)
    w = (y == 0).astype(float)  # class-1 samples weigh nothing
    model = _net()
    Trainer(max_steps=40, batch_size=16, lr=1e-2).fit(model, Domain(X, y, weight=w))
    pred = Trainer().predict_logits(model, X).argmax(1)
    assert (pred == 0).mean() > 0.95


def test_non_finite_loss_names_the_step():
    X, y = _blobs()

    def bad(src, tgt):
        return src.features.sum() * (float("nan") if src.step == 3 else 0.0)

    with pytest.raises(NonFiniteLossError, match="at step 3.*last batch: input mean"):
        Trainer(batch_size=16).fit(_net(), Domain(X, y), Domain(X), extra_loss=bad)


def test_source_val_selection_keeps_the_best_checkpoint():
    X, y = _blobs(n=96)
    tr = Trainer(max_steps=30, batch_size=16, eval_every=10, selection="source_val")
    hist = tr.fit(_net(), Domain(X, y))
    assert hist["eval_step"] == [10, 20, 30]
    best = int(np.argmax(hist["eval_score"]))
    assert tr.selected_step_ == hist["eval_step"][best]


# ------------------------------------------------------------------ checkpoints and resume


class _Kill(Exception):
    pass


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    X, y = _blobs(n=80)
    Xt, _ = _blobs(n=80, shift=1.0, seed=1)
    opts = dict(max_steps=24, batch_size=16, checkpoint_every=5, deterministic=True,
                optimizer="sgd", schedule="dan", lr=0.05)  # fmt: skip

    full = _net(dropout=0.3)
    Trainer(**opts, output_dir=str(tmp_path / "a")).fit(
        full, Domain(X, y), Domain(Xt), extra_loss=_mmd_loss
    )

    def dies(src, tgt):
        if src.step == 13:
            raise _Kill
        return _mmd_loss(src, tgt)

    with pytest.raises(_Kill):
        Trainer(**opts, output_dir=str(tmp_path / "b")).fit(
            _net(dropout=0.3), Domain(X, y), Domain(Xt), extra_loss=dies
        )
    ck = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert ck["step"] == 10
    resumed = _net(dropout=0.3, seed=123)  # different init: the checkpoint must overwrite it
    Trainer(**opts, output_dir=str(tmp_path / "b"), resume=True).fit(
        resumed, Domain(X, y), Domain(Xt), extra_loss=_mmd_loss
    )
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert (tmp_path / "b" / "checkpoints" / "selected.pt").exists()


# ------------------------------------------------------------------ config and DDP


def test_trainer_from_config():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        for hw in ("cpu", "cuda", "cuda_bf16", "cuda_fp16", "ddp"):
            cfg = compose("config", overrides=[f"hardware={hw}"])
            tr = instantiate(cfg.trainer, output_dir="/tmp/x")
            assert isinstance(tr, Trainer) and tr.device == cfg.hardware.device
            assert tr.output_dir == "/tmp/x"


_DDP_SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from test_trainer import _blobs, _net, _mmd_loss
from tlbench.task import Domain
from tlbench.trainer import Trainer
X, y = _blobs(n=64)
model = _net()
Trainer(max_steps=8, batch_size=16, optimizer="sgd", lr=0.05).fit(model, Domain(X, y))
import os
if int(os.environ.get("RANK", "0")) == 0:
    torch.save(model.state_dict(), sys.argv[1])
"""


@pytest.mark.slow
def test_ddp_two_processes_equal_one(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(_DDP_SCRIPT.format(tests=str(REPO / "tests")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    subprocess.run([sys.executable, str(script), str(tmp_path / "one.pt")], check=True, env=env,
                   timeout=300)  # fmt: skip
    # --standalone: a free port of its own, so two test sessions on one host never collide
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(tmp_path / "two.pt")]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, timeout=300, capture_output=True)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ GPU (skipped without one)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_precisions_train(precision):
    from tlbench.backbones import create_backbone

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    X = rng.normal(0, 1, (96, 3, 16, 16)).astype(np.float32) + y[:, None, None, None]
    Xt = X + 0.5
    model = DeepNet(create_backbone("small_cnn", num_classes=3, in_shape=(3, 16, 16)), 3, 32)
    tr = Trainer(device="cuda", precision=precision, channels_last=precision != "fp32",
                 max_steps=40, batch_size=32, log_every=10, lr=1e-2)  # fmt: skip
    hist = tr.fit(model, Domain(X, y), Domain(Xt), extra_loss=_mmd_loss)
    assert all(math.isfinite(v) for v in hist["loss"])
    assert hist["cls_loss"][-1] < hist["cls_loss"][0]
    assert next(model.parameters()).device.type == "cuda"


class _Images(torch.utils.data.Dataset):
    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(self.X[i])


def test_dataset_domains_with_and_without_workers_train_alike():
    X, y = _blobs(n=48)
    results = []
    for workers in (0, 1):
        model = _net()
        tr = Trainer(max_steps=6, batch_size=16, num_workers=workers)
        tr.fit(model, Domain(_Images(X), y), Domain(_Images(X + 1)), extra_loss=_mmd_loss)
        results.append(tr.predict_logits(model, _Images(X)))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
