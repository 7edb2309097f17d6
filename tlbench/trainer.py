"""The one training loop of every deep method: devices, precision, data, schedules, checkpoints.

A deep method builds a model (``forward_features`` + ``forward_head``, see
:mod:`tlbench.backbones`) and calls :meth:`Trainer.fit` with the labeled domain, the unlabeled
domain and an optional ``extra_loss(source: Batch, target: Batch) -> Tensor``. The trainer owns
everything else:

- the device (``auto|cpu|cuda|mps``; asking for an absent CUDA is an error) and precision
  (``fp32|bf16|fp16`` through ``torch.autocast``; a gradient scaler for fp16 only), channels-last
  and ``torch.compile`` as options, pinned memory / non-blocking copies / ``cudnn.benchmark``
  on CUDA only;
- paired, never-ending source and target batch streams whose order is a pure function of
  ``(seed, domain, pass)``, so a resumed run sees exactly the batches an uninterrupted one sees;
- training counted in steps, SGD/Adam/AdamW, ``constant | cosine | dan`` schedules (DAN's
  annealing lr_p = lr0 (1 + alpha p)^-beta), per-parameter-group learning-rate multipliers;
- the weighted cross-entropy with ``Domain.weight`` as ``sample_weight``;
- several optimisers for the methods with players or phases (DANN-style domain classifiers,
  domain confusion, ADDA): each :class:`Update` names its parameters, its loss, its optimiser
  and the steps it is active; all of them, and their schedules, are checkpointed;
- a progress bar (only on a terminal), a history, evaluation every ``eval_every`` steps with a
  selection rule that never reads target labels, atomic checkpoints and ``resume``;
- DistributedDataParallel when launched by ``torchrun`` (``WORLD_SIZE > 1``): every rank takes
  its slice of the same global batch; rank 0 writes checkpoints.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .errors import ConfigError, DataError, TlbenchError
from .task import UNLABELED, Domain

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "dan")
SELECTIONS = ("last", "source_val", "target_entropy")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(TlbenchError, FloatingPointError):
    """The training loss became NaN or infinite; the message gives the step and batch stats."""


@dataclass
class Batch:
    """What ``extra_loss`` sees of one domain's batch.

    Attributes
    ----------
    features : Tensor
        ``model.forward_features(x)`` (float32).
    logits : Tensor
        ``model.forward_head(features)`` (float32).
    y : Tensor or None
        Labels (``-1``: unlabeled), ``None`` for an unlabeled domain.
    weight : Tensor or None
        Per-sample weights from ``Domain.weight``.
    layers : dict of str to Tensor
        Every named layer output of a model with ``forward_layers`` (else features and logits).
    step : int
        The current step (0-based).
    progress : float
        ``step / max_steps`` in [0, 1], for annealed loss weights.
    x : Tensor or None
        The batch's inputs as the network reads them (on the device): for a loss that runs
        a second network (ADDA's target encoder).
    domain : Tensor or None
        Each sample's index into its domain's ``domain_names`` (``Domain.domain_index``): a
        deep method that appends the labeled target samples to the source marks them so;
        ``None`` for a single domain.
    """

    features: torch.Tensor
    logits: torch.Tensor
    y: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    layers: dict[str, torch.Tensor] = field(default_factory=dict)
    step: int = 0
    progress: float = 0.0
    x: torch.Tensor | None = None
    domain: torch.Tensor | None = None


@dataclass
class Update:
    """One optimiser of a training step and the loss it descends.

    A method that trains two players (a feature extractor against a domain classifier, ADDA's
    target encoder against its discriminator) or in phases (ADDA's source pre-training, then
    the adversarial phase) gives :meth:`Trainer.fit` a list of updates instead of one loss.
    At each step the trainer runs the network once on the paired batches, evaluates the loss
    of every update active at that step on those outputs, takes each loss's gradient with
    respect to *its own* parameters only (all at the same point, before any of them moves),
    then steps every active optimiser. A parameter outside an update's ``params`` never moves
    by that update's loss, whatever the loss reads: a player's parameters are frozen to the
    other player.

    Parameters
    ----------
    name : str
        Names the optimiser in checkpoints and the update's losses in the history
        (``<name>_loss``).
    params : iterable
        Parameters or parameter groups (dicts with an optional ``lr_mult``) it optimises.
    loss : callable, optional
        ``loss(source: Batch, target: Batch | None) -> Tensor`` or ``(Tensor, dict of floats
        to log)``.
    classification : bool, default=True
        Add the weighted cross-entropy of the labeled batch to ``loss``.
    optimizer, lr, weight_decay : optional
        This update's optimiser, base learning rate and weight decay (default: the trainer's).
    betas : tuple of float, optional
        Adam's (beta1, beta2) (default: torch's).
    schedule : {"constant", "cosine", "dan"}, optional
        Its learning-rate schedule over its own steps (default: the trainer's).
    start, stop : int
        Active for steps ``start <= step < stop`` (``stop=None``: to ``max_steps``).
    on_start : callable, optional
        ``on_start()`` runs once, before the forward of step ``start`` (e.g. ADDA copies the
        pre-trained source encoder into the target encoder). A run resumed past ``start``
        does not run it again: its effect is in the checkpointed weights.
    """

    name: str
    params: Iterable
    loss: Callable[[Batch, Batch | None], Any] | None = None
    classification: bool = True
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    betas: tuple[float, float] | None = None
    schedule: str | None = None
    start: int = 0
    stop: int | None = None
    on_start: Callable[[], None] | None = None


# --------------------------------------------------------------------------- device helpers


def resolve_device(device: str) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a device; an absent accelerator is an error."""
    name = str(device)
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} was asked for but torch sees no CUDA device "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "use hardware=cpu or trainer.device=auto"
        )
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device 'mps' was asked for but is not available; use hardware=cpu")
    return torch.device(name)


def method_device(device: str | None, trainer: Any | None = None) -> torch.device:
    """The device of a method's own torch computation (a kernel, a solver): one rule for all.

    ``device`` when the method sets one, else its trainer's (``hardware=cpu`` means the CPU
    for every method), else the CPU; resolved by :func:`resolve_device`, so ``auto`` and an
    absent accelerator mean what they mean for the trainer.
    """
    return resolve_device(device or getattr(trainer, "device", None) or "cpu")


def _check_precision(precision: str, device: torch.device) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"precision fp16 needs a CUDA device (got {device.type}); use fp32 or bf16 there"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision bf16 is not supported by this GPU; use fp16 or fp32")
    if precision == "bf16" and device.type == "mps":
        raise ConfigError("precision bf16 is not supported on mps; use fp32")


def _check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """``trainer.<name>`` is a number (an integer) in its range, else one :class:`ConfigError`."""
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        where = (
            f"in {lo}, {hi}"
            if low is not None and high is not None
            else (f"> {low:g}" if low_open else f">= {low:g}")
        )
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"trainer.{name} must be {kind} {where}, got {value!r}")


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (1 process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _atomic_save(obj: Any, path: Path) -> None:
    # write then rename: a run killed mid-write leaves the previous checkpoint intact
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _digest(h: Any, X: Any) -> None:
    """Feed what identifies ``X`` (an array, a sparse matrix, a tensor or a Dataset) to ``h``."""
    if X is None:
        h.update(b"none")
    elif sp.issparse(X):
        X = X.tocsr()
        for part in (X.data, X.indices, X.indptr):
            _digest(h, part)
    elif isinstance(X, np.ndarray | torch.Tensor):
        arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    elif hasattr(X, "checksum"):  # ImageFiles, AugmentedImages: names, bytes, transform
        h.update(str(X.checksum()).encode())
    else:  # an opaque Dataset: its kind and size
        h.update(f"{type(X).__qualname__}:{len(X)}".encode())


def domain_digest(domain: Domain | None) -> str:
    """A hash of a domain's samples, labels and weights (what a checkpoint was trained on)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    if domain is not None:
        _digest(h, domain.X)
        for part in (domain.y, domain.weight):
            _digest(h, None if part is None else np.asarray(part))
    return h.hexdigest()


# --------------------------------------------------------------------------- data


class _DomainData:
    """One domain as tensors (arrays) or a Dataset, served by index batches."""

    def __init__(self, domain: Domain, *, with_labels: bool) -> None:
        X = domain.X
        self.n = len(domain)
        self.dataset = None
        if sp.issparse(X):
            X = X.toarray()
        if isinstance(X, np.ndarray):
            self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        else:  # a torch Dataset yielding x or (x, y, ...)
            self.X, self.dataset = None, X
        y = domain.y if with_labels else None
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        w = domain.weight
        self.w = None if w is None else torch.as_tensor(np.asarray(w), dtype=torch.float32)
        d = domain.domain_index
        self.d = None if d is None else torch.as_tensor(np.asarray(d), dtype=torch.long)

    def sample_x(self, index: torch.Tensor) -> torch.Tensor:
        if self.X is not None:
            return self.X[index]
        items = [self.dataset[int(i)] for i in index]
        xs = [it[0] if isinstance(it, tuple | list) else it for it in items]
        return torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in xs])


class _IndexStream:
    """Never-ending index batches of one domain; pass ``e`` is a permutation seeded by (seed, e).

    ``state`` = (pass, batches consumed in that pass) is all a checkpoint needs to continue.
    The global batch is drawn the same way on every rank; each rank keeps its slice.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world = rank, world
        self.per_pass = n // batch_size  # drop_last: every batch has the full size
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def state(self) -> tuple[int, int]:
        return self.epoch, self.pos

    def load_state(self, state: tuple[int, int]) -> None:
        self.epoch, self.pos = int(state[0]), int(state[1])
        self._perm = self._permutation(self.epoch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        if self.pos >= self.per_pass:
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        start = self.pos * self.batch_size
        idx = self._perm[start : start + self.batch_size]
        self.pos += 1
        return idx[self.rank :: self.world]


class _Loader:
    """Batches (x, y, w, domain index) of one domain; a DataLoader with workers for Datasets."""

    def __init__(self, data: _DomainData, stream: _IndexStream, trainer: Trainer) -> None:
        self.data, self.stream, self.trainer = data, stream, trainer
        self._it: Iterator | None = None

    def _start(self) -> None:
        if self.data.dataset is None or self.trainer.num_workers == 0:
            self._it = None
            return
        # workers prefetch ahead of the stream; a restart (resume) rebuilds from stream.state
        snap = _IndexStream(self.stream.n, self.stream.batch_size, self.stream.seed,
                            self.stream.rank, self.stream.world)  # fmt: skip
        snap.load_state(self.stream.state())
        loader = torch.utils.data.DataLoader(
            _IndexedDataset(self.data),
            batch_sampler=_ListSampler(snap),
            num_workers=self.trainer.num_workers,
            pin_memory=self.trainer.device_.type == "cuda",
            persistent_workers=False,
        )
        self._it = iter(loader)

    def next(
        self,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        if self._it is None and self.data.dataset is not None and self.trainer.num_workers:
            self._start()
        if self._it is not None:
            x = next(self._it)
            idx = next(self.stream)  # keep the consumed position for checkpoints
        else:
            idx = next(self.stream)
            x = self.data.sample_x(idx)
        y = None if self.data.y is None else self.data.y[idx]
        w = None if self.data.w is None else self.data.w[idx]
        d = None if self.data.d is None else self.data.d[idx]
        return x, y, w, d


class _IndexedDataset(torch.utils.data.Dataset):
    def __init__(self, data: _DomainData) -> None:
        self.data = data

    def __len__(self) -> int:
        return self.data.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.data.sample_x(torch.tensor([i]))[0]


class _ListSampler:
    def __init__(self, stream: _IndexStream) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[list[int]]:
        for idx in self.stream:
            yield idx.tolist()


class _Staged(nn.Module):
    """``forward(x)`` returns every named output, so DDP sees one ordinary forward per step."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if hasattr(self.model, "forward_layers"):
            return self.model.forward_layers(x)
        f = self.model.forward_features(x)
        return {"features": f, "logits": self.model.forward_head(f)}


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Train a model with ``forward_features``/``forward_head`` for a fixed number of steps.

    The defaults are the command line's (``conf/config.yaml``, ``trainer:``; a test keeps them
    equal): a deep method fitted from Python without a trainer trains as ``python -m tlbench``
    does.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "mps"} or "cuda:N", default="cpu"
        Where to train; ``cuda`` without a GPU is a :class:`~tlbench.errors.ConfigError`.
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Autocast dtype (fp16 on CUDA only, with a gradient scaler).
    max_steps : int, default=1000
        Optimisation steps (one source and one target batch each).
    batch_size : int, default=32
        Global batch size per domain (split across DDP ranks).
    optimizer : {"sgd", "adam", "adamw", "rmsprop"}, default="sgd"
        ``rmsprop`` uses Keras' defaults (rho 0.9, epsilon 1e-7), which the Keras recipes
        reproduced here were tuned with; torch's own default rho is 0.99.
    lr : float, default=0.01
        Base learning rate lr0; parameter groups may carry an ``lr_mult``.
    momentum, weight_decay, nesterov
        Optimizer settings (momentum only for SGD).
    schedule : {"constant", "cosine", "dan"}, default="dan"
        ``dan``: lr_p = lr0 (1 + schedule_alpha p)^-schedule_beta with p = step / max_steps
        (Long et al., ICML 2015; alpha=10, beta=0.75). ``cosine``: half-cosine to 0.
    schedule_alpha, schedule_beta : float
        The annealing's alpha and beta.
    grad_clip : float or None
        Clip the gradient norm to this value.
    num_workers : int, default=0
        DataLoader workers for Dataset domains (array domains are indexed in memory).
    channels_last, compile : bool
        Channels-last memory format for 4-D inputs; ``torch.compile`` the model.
    deterministic : bool, default=False
        ``torch.use_deterministic_algorithms`` and no ``cudnn.benchmark``: with it, a resumed
        CPU run ends with the same weights as an uninterrupted one.
    seed : int, default=0
        Seed of the batch order and of the model's random layers (dropout).
    log_every : int, default=50
        Steps between history entries (averages over the window) and log lines.
    eval_every : int, default=0
        Steps between evaluations for ``selection`` (0: only at the end).
    selection : {"last", "source_val", "target_entropy"}, default="last"
        Which checkpoint to keep, without target labels: the last one; the best accuracy on a
        held-out part of the labeled data (``val_fraction``); or the lowest mean prediction
        entropy on the unlabeled target.
    val_fraction : float, default=0.1
        Part of the labeled data held out for ``source_val``.
    checkpoint_every : int, default=0
        Steps between atomic checkpoints under ``output_dir/checkpoints`` (0: none).
    resume : bool, default=False
        Continue from ``output_dir/checkpoints/last.pt`` when it exists.
    progress_bar : bool, default=True
        Show a tqdm bar (only when stderr is a terminal).
    output_dir : str, optional
        The run folder (the runner passes it).
    run_fingerprint : str, optional
        A hash of the run's config that bears on training (the runner passes it). A
        checkpoint stores it with the trainer's options, the model's parameter shapes and a
        hash of the data, and ``resume`` refuses a checkpoint whose fingerprint differs.
    """

    def __init__(
        self,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        max_steps: int = 1000,
        batch_size: int = 32,
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = False,
        schedule: str = "dan",
        schedule_alpha: float = 10.0,
        schedule_beta: float = 0.75,
        grad_clip: float | None = None,
        num_workers: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        deterministic: bool = False,
        seed: int = 0,
        log_every: int = 50,
        eval_every: int = 0,
        selection: str = "last",
        val_fraction: float = 0.1,
        checkpoint_every: int = 0,
        resume: bool = False,
        progress_bar: bool = True,
        output_dir: str | None = None,
        run_fingerprint: str | None = None,
    ) -> None:
        self.device = device
        self.precision = precision
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.schedule = schedule
        self.schedule_alpha = schedule_alpha
        self.schedule_beta = schedule_beta
        self.grad_clip = grad_clip
        self.num_workers = num_workers
        self.channels_last = channels_last
        self.compile = compile
        self.deterministic = deterministic
        self.seed = seed
        self.log_every = log_every
        self.eval_every = eval_every
        self.selection = selection
        self.val_fraction = val_fraction
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.progress_bar = progress_bar
        self.output_dir = output_dir
        self.run_fingerprint = run_fingerprint

    def __repr__(self) -> str:
        keys = ("device", "precision", "max_steps", "batch_size", "optimizer", "lr", "schedule")
        return f"Trainer({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"

    # ----------------------------------------------------------------- setup

    def check_options(self) -> None:
        """Check every option's name and range before any work, one line per error.

        The device waits for ``fit``: a shallow method still runs under ``hardware=cuda``
        on a machine without a GPU.
        """
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"unknown selection {self.selection!r}; choose one of {SELECTIONS}")
        _check_number("max_steps", self.max_steps, low=1, integer=True)
        _check_number("batch_size", self.batch_size, low=1, integer=True)
        _check_number("val_fraction", self.val_fraction, low=0.0, high=1.0, low_open=True,
                      high_open=True)  # fmt: skip
        _check_number("lr", self.lr, low=0.0, low_open=True)
        _check_number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_number("schedule_alpha", self.schedule_alpha, low=0.0)
        _check_number("schedule_beta", self.schedule_beta, low=0.0)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, low=0.0, low_open=True)
        for name in ("eval_every", "checkpoint_every", "num_workers"):
            _check_number(name, getattr(self, name), low=0, integer=True)
        _check_number("log_every", self.log_every, low=1, integer=True)
        _check_number("seed", self.seed, low=0, integer=True)
        if self.resume and self.output_dir is None:
            raise ConfigError("trainer.resume=true needs a run folder (trainer.output_dir)")

    def _validate(self) -> None:
        self.check_options()
        self.device_ = resolve_device(self.device)
        _check_precision(self.precision, self.device_)
        self.rank_, self.world_, local = _dist_info()
        if self.world_ > 1 and self.device_.type == "cuda":
            self.device_ = torch.device("cuda", local)
        if self.batch_size % self.world_:
            raise ConfigError(
                f"trainer.batch_size={self.batch_size} is not divisible by the {self.world_} "
                "DDP processes"
            )

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of the configured precision (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_.type, dtype=_DTYPES[self.precision])

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device_, non_blocking=self.device_.type == "cuda")
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _lr_lambda(self, step: int) -> float:
        return self._schedule_factor(self.schedule, step, self.max_steps)

    def _schedule_factor(self, schedule: str, step: int, n_steps: int) -> float:
        """The learning-rate multiplier of ``schedule`` after ``step`` of ``n_steps`` steps."""
        p = min(step / max(n_steps, 1), 1.0)
        if schedule == "dan":
            return (1.0 + self.schedule_alpha * p) ** (-self.schedule_beta)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        return 1.0

    def _make_optimizer(
        self,
        model: nn.Module,
        params: Any,
        *,
        optimizer: str | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        betas: tuple[float, float] | None = None,
    ) -> torch.optim.Optimizer:
        """The optimiser of ``params`` (default: the trainer's settings; an update's override)."""
        kind = self.optimizer if optimizer is None else optimizer
        lr0 = self.lr if lr is None else float(lr)
        wd = self.weight_decay if weight_decay is None else float(weight_decay)
        if params is None:
            groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        else:
            params = list(params)
            groups = [dict(g) if isinstance(g, dict) else {"params": [g]} for g in params]
            if groups and not isinstance(params[0], dict):  # a flat list of tensors
                groups = [{"params": list(params)}]
        for g in groups:  # per-group learning rates as multipliers of lr0
            g["lr"] = lr0 * float(g.pop("lr_mult", 1.0))
        if kind == "sgd":
            return torch.optim.SGD(
                groups, lr=lr0, momentum=self.momentum, weight_decay=wd, nesterov=self.nesterov
            )
        if kind == "rmsprop":
            return torch.optim.RMSprop(
                groups, lr=lr0, alpha=0.9, eps=1e-7, weight_decay=wd, momentum=0.0
            )
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        extra = {} if betas is None else {"betas": tuple(float(b) for b in betas)}
        return cls(groups, lr=lr0, weight_decay=wd, **extra)

    def _check_updates(self, updates: list[Update]) -> None:
        """Names, optimisers, schedules and step windows of ``updates``, one line per error."""
        names = [u.name for u in updates]
        if not updates or len(set(names)) != len(names):
            raise ConfigError(f"trainer updates need distinct names, got {names}")
        for u in updates:
            if u.optimizer is not None and u.optimizer not in OPTIMIZERS:
                raise ConfigError(f"update {u.name!r}: unknown optimizer {u.optimizer!r}; "
                                  f"choose one of {OPTIMIZERS}")  # fmt: skip
            if u.schedule is not None and u.schedule not in SCHEDULES:
                raise ConfigError(f"update {u.name!r}: unknown schedule {u.schedule!r}; "
                                  f"choose one of {SCHEDULES}")  # fmt: skip
            stop = self._stop(u)
            if not 0 <= u.start < stop <= self.max_steps:
                raise ConfigError(
                    f"update {u.name!r} is active for steps [{u.start}, {stop}), which is not "
                    f"a non-empty part of the {self.max_steps} training steps; raise "
                    "trainer.max_steps or shorten the method's phases"
                )
        idle = [
            step
            for step in sorted({0, *(self._stop(u) for u in updates)} - {self.max_steps})
            if not any(u.start <= step < self._stop(u) for u in updates)
        ]
        if idle:
            raise ConfigError(f"no update is active at training step {idle[0]}; the updates' "
                              "steps must cover 0 .. trainer.max_steps")  # fmt: skip
        if self.world_ > 1 and len(updates) > 1:
            raise ConfigError(
                "a method with several optimisers (an adversarial or phased one) runs in one "
                "process; DistributedDataParallel covers single-loss methods only"
            )

    def isolated(self) -> Trainer:
        """A copy for a second, throw-away fit (the selection's held-out scorer).

        It has no run folder, no checkpoints and no resume: it never reads or writes the
        run's weights.
        """
        import copy

        t = copy.copy(self)
        t.output_dir, t.checkpoint_every, t.resume = None, 0, False
        return t

    #: The options whose change makes a checkpoint belong to another training.
    _FINGERPRINT_KEYS = ("precision", "max_steps", "batch_size", "optimizer", "lr", "momentum",
                         "weight_decay", "nesterov", "schedule", "schedule_alpha",
                         "schedule_beta", "grad_clip", "seed", "eval_every", "selection",
                         "val_fraction")  # fmt: skip

    def fingerprint(self, model: nn.Module, labeled: Domain, unlabeled: Domain | None,
                    params: list[dict[str, Any]], updates: list[Update] | None = None,
                    optimizers: list[torch.optim.Optimizer] | None = None) -> str:  # fmt: skip
        """What a checkpoint must match to be resumed: config, options, model, groups, data.

        With several ``updates``, each one's name, optimiser settings, steps and groups too.
        """
        import hashlib
        import json

        def sizes(groups: list[dict[str, Any]]) -> list[list[float]]:
            return [[float(g["lr"]), sum(p.numel() for p in g["params"])] for g in groups]

        shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        content = {
            "run": self.run_fingerprint,
            "trainer": {k: getattr(self, k) for k in self._FINGERPRINT_KEYS},
            "model": [type(model).__qualname__, shapes],
            "groups": sizes(params),
            "labeled": domain_digest(labeled),
            "unlabeled": domain_digest(unlabeled),
        }
        if updates is not None:
            content["updates"] = [
                [u.name, u.classification, u.optimizer, u.lr, u.weight_decay, u.betas,
                 u.schedule, u.start, u.stop, sizes(o.param_groups)]
                for u, o in zip(updates, optimizers or [], strict=True)
            ]  # fmt: skip
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _checkpoint_path(self) -> Path | None:
        return (
            None if self.output_dir is None else Path(self.output_dir) / "checkpoints" / "last.pt"
        )

    # ----------------------------------------------------------------- fit

    def fit(
        self,
        model: nn.Module,
        labeled: Domain,
        unlabeled: Domain | None = None,
        *,
        extra_loss: Callable[[Batch, Batch], Any] | None = None,
        params: Iterable | None = None,
        regularizer: Callable[[], torch.Tensor] | None = None,
        updates: list[Update] | None = None,
    ) -> dict[str, list[float]]:
        """Train ``model`` in place; return the history.

        Parameters
        ----------
        model : nn.Module
            Has ``forward_features`` and ``forward_head`` (optionally ``forward_layers``).
        labeled : Domain
            Labeled training data (samples labeled ``-1`` are ignored by the classification loss).
        unlabeled : Domain, optional
            Unlabeled data (the target) drawn in pairs with ``labeled``; needed by ``extra_loss``.
        extra_loss : callable, optional
            ``extra_loss(source, target) -> Tensor`` or ``(Tensor, dict of floats to log)``,
            added to the classification loss.
        params : iterable, optional
            Parameters or parameter groups (dicts, with an optional ``lr_mult``); default: all
            trainable parameters.
        regularizer : callable, optional
            ``regularizer() -> Tensor``: a penalty on the parameters (e.g. L2-SP), added to
            the loss every step and logged as ``reg_loss``.
        updates : list of Update, optional
            Several optimisers, each with its loss, parameters and active steps (adversarial
            and phased methods; see :class:`Update`), instead of ``extra_loss`` and
            ``params``. ``regularizer`` is added to the first update's loss. Every optimiser,
            its schedule and the steps are in the checkpoints.

        Returns
        -------
        history : dict of str to list of float
            ``step``, ``loss``, ``cls_loss``, ``transfer_loss``, ``lr`` and any logged values
            every ``log_every`` steps; ``eval_step`` / ``eval_score`` for the selection. With
            several updates: ``<name>_loss`` and ``<name>_lr`` of each (``loss`` is their sum).
        """
        self._validate()
        single = updates is None
        if single:
            updates = [Update("model", params, extra_loss)]
        elif extra_loss is not None or params is not None:
            raise ConfigError("give Trainer.fit either updates or extra_loss/params, not both")
        self._check_updates(updates)
        needs_target = any(u.loss is not None for u in updates) if single else False
        if needs_target and unlabeled is None:
            raise ConfigError("an extra (transfer) loss needs an unlabeled domain")
        if self.selection == "target_entropy" and unlabeled is None:
            raise ConfigError(
                "trainer.selection=target_entropy needs unlabeled target samples and this "
                "method trains without them: use last or source_val"
            )
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        if self.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.device_.type == "cuda":
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cudnn.deterministic = self.deterministic

        given = labeled  # the checkpoint's fingerprint covers all of it
        labeled, val = self._split_validation(labeled)
        self._check_sizes(labeled, unlabeled)
        src = _DomainData(labeled, with_labels=True)
        tgt = None if unlabeled is None else _DomainData(unlabeled, with_labels=False)
        src_stream = _IndexStream(
            src.n, self.batch_size, self.seed * 2 + 1, self.rank_, self.world_
        )
        tgt_stream = (
            None
            if tgt is None
            else _IndexStream(tgt.n, self.batch_size, self.seed * 2 + 2, self.rank_, self.world_)
        )
        src_loader = _Loader(src, src_stream, self)
        tgt_loader = None if tgt is None else _Loader(tgt, tgt_stream, self)

        model.to(self.device_)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        optimizers = [
            self._make_optimizer(model, u.params, optimizer=u.optimizer, lr=u.lr,
                                 weight_decay=u.weight_decay, betas=u.betas)
            for u in updates
        ]  # fmt: skip
        schedulers = [
            torch.optim.lr_scheduler.LambdaLR(opt, self._update_lambda(u))
            for u, opt in zip(updates, optimizers, strict=True)
        ]
        scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        history: dict[str, list[float]] = {}
        state = {"step": 0, "best_score": None, "best_step": None, "best_state": None}

        ckpt_path = self._checkpoint_path()
        keeps = ckpt_path is not None and (self.resume or bool(self.checkpoint_every))
        self.fingerprint_ = (
            self.fingerprint(
                model,
                given,
                unlabeled,
                optimizers[0].param_groups,
                None if single else updates,
                optimizers,
            )  # fmt: skip
            if keeps
            else None
        )
        if self.resume and ckpt_path is not None and ckpt_path.exists():
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            if ck.get("fingerprint") != self.fingerprint_:
                raise ConfigError(
                    f"trainer.resume: {ckpt_path} belongs to another training (its config, "
                    f"model or data differ: fingerprint {ck.get('fingerprint')} vs "
                    f"{self.fingerprint_}); delete {ckpt_path.parent} or use a new run folder"
                )
            model.load_state_dict(ck["model"])
            # a checkpoint of one optimiser written before updates existed
            opt_states = ck.get("optimizers") or {updates[0].name: ck.get("optimizer")}
            sched_states = ck.get("schedulers") or {updates[0].name: ck.get("scheduler")}
            for u, opt, sched in zip(updates, optimizers, schedulers, strict=True):
                opt.load_state_dict(opt_states[u.name])
                sched.load_state_dict(sched_states[u.name])
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            src_stream.load_state(ck["src_stream"])
            if tgt_stream is not None and ck.get("tgt_stream"):
                tgt_stream.load_state(ck["tgt_stream"])
            torch.set_rng_state(ck["rng_cpu"])
            if self.device_.type == "cuda" and ck.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(ck["rng_cuda"])
            history = ck["history"]
            state.update({k: ck[k] for k in ("step", "best_score", "best_step", "best_state")})
            log.info("resumed from %s at step %d", ckpt_path, state["step"])
            self.resumed_from_ = int(state["step"])
        else:
            if self.resume:  # a first launch of a resumable run: say it, do not guess
                log.warning("trainer.resume=true: no checkpoint at %s; training from step 0",
                            ckpt_path)  # fmt: skip
            self.resumed_from_ = None
            torch.manual_seed(self.seed)  # dropout and other random layers

        staged: nn.Module = _Staged(model)
        if self.world_ > 1:
            staged = self._wrap_ddp(staged)
        if self.compile:
            staged = torch.compile(staged)

        bar = self._progress(state["step"])
        window: dict[str, list[float]] = {}
        model.train()
        step = state["step"]
        while step < self.max_steps:
            progress = step / self.max_steps
            active = [i for i, u in enumerate(updates) if u.start <= step < self._stop(u)]
            for i in active:
                if updates[i].start == step and updates[i].on_start is not None:
                    updates[i].on_start()
            xs, ys, ws, ds = src_loader.next()
            xs, ys = self._to_device(xs), ys.to(self.device_)
            ws = None if ws is None else ws.to(self.device_)
            xt = None
            if tgt_loader is not None:
                xt = tgt_loader.next()[0]
                xt = self._to_device(xt)
                x = torch.cat([xs, xt])
            else:
                x = xs
            with self.autocast():
                out = staged(x)
            # losses in float32, outside autocast: the MMD kernels need the precision
            out = {k: v.float() for k, v in out.items()}
            n = len(xs)
            s_layers = {k: v[:n] for k, v in out.items()}
            source = Batch(s_layers["features"], s_layers["logits"], ys, ws, s_layers, step,
                           progress, xs, None if ds is None else ds.to(self.device_))  # fmt: skip
            target = None
            if xt is not None:
                t_layers = {k: v[n:] for k, v in out.items()}
                target = Batch(t_layers["features"], t_layers["logits"], None, None, t_layers,
                               step, progress, xt)  # fmt: skip
            cls_loss = _weighted_ce(source.logits, ys, ws)
            logs = {"cls_loss": float(cls_loss.detach())}
            losses = []
            for i in active:
                u = updates[i]
                loss = cls_loss if u.classification else cls_loss.new_zeros(())
                if u.loss is not None:
                    extra = u.loss(source, target)
                    if isinstance(extra, tuple):
                        extra, more = extra
                        logs.update({k: float(v) for k, v in more.items()})
                    loss = loss + extra
                    logs["transfer_loss" if single else f"{u.name}_loss"] = float(extra.detach())
                if regularizer is not None and i == 0:
                    reg = regularizer()
                    loss = loss + reg
                    logs["reg_loss"] = float(reg.detach())
                if not torch.isfinite(loss):
                    raise self._non_finite(step, loss, logs, xs)
                losses.append(loss)
                if not single:
                    logs[f"{u.name}_lr"] = optimizers[i].param_groups[0]["lr"]
            self._step([optimizers[i] for i in active], losses, scaler)
            logs["loss"] = float(sum(float(v.detach()) for v in losses))
            logs["lr"] = optimizers[active[0]].param_groups[0]["lr"]
            for i in active:
                schedulers[i].step()
            step += 1
            for k, v in logs.items():
                window.setdefault(k, []).append(v)
            if step % max(int(self.log_every), 1) == 0 or step == self.max_steps:
                self._log(history, window, step)
                window = {}
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
            if (self.eval_every and step % self.eval_every == 0) or step == self.max_steps:
                self._evaluate(model, val, unlabeled, step, history, state)
            state["step"] = step
            if self.checkpoint_every and step % self.checkpoint_every == 0:
                self._save(ckpt_path, model, updates, optimizers, schedulers, scaler,
                           src_stream, tgt_stream, history, state)  # fmt: skip
        if bar is not None:
            bar.close()
        if self.selection != "last" and state["best_state"] is not None:
            model.load_state_dict(state["best_state"])
        if self.checkpoint_every and ckpt_path is not None and self.rank_ == 0:
            # the selected weights beside the record, for reuse without retraining
            _atomic_save({"model": model.state_dict(), "step": state["best_step"] or step,
                          "fingerprint": self.fingerprint_},
                         ckpt_path.with_name("selected.pt"))  # fmt: skip
        model.eval()
        if self.deterministic and not was_deterministic:  # leave the global switch as found
            torch.use_deterministic_algorithms(False)
        self.history_ = history
        self.selected_step_ = state["best_step"] if self.selection != "last" else step
        return history

    # ----------------------------------------------------------------- helpers

    def _split_validation(self, labeled: Domain) -> tuple[Domain, Domain | None]:
        """``selection=source_val``'s held-out part: stratified by class, seeded by ``seed``.

        A class with a single sample stays in training (holding it out would remove it).
        """
        if self.selection != "source_val":
            return labeled, None
        from .datasets.common import _stratified_sample

        y = np.asarray(labeled.y)
        classes, counts = np.unique(y, return_counts=True)
        pool = np.flatnonzero(np.isin(y, classes[counts >= 2]))
        n_val = max(1, int(round(self.val_fraction * len(pool))))
        if len(pool) < 2:
            raise DataError("trainer.selection=source_val needs a class with 2 or more samples")
        val = pool[_stratified_sample(y[pool], n_val, np.random.default_rng(self.seed))]
        train = np.setdiff1d(np.arange(len(y)), val)
        return labeled.subset(train), labeled.subset(val)

    def _check_sizes(self, labeled: Domain, unlabeled: Domain | None) -> None:
        for role, dom in (("labeled", labeled), ("unlabeled", unlabeled)):
            if dom is not None and len(dom) < self.batch_size:
                raise DataError(
                    f"trainer.batch_size={self.batch_size} is larger than the {role} domain "
                    f"{dom.name!r} ({len(dom)} samples); lower trainer.batch_size"
                )

    def _wrap_ddp(self, staged: nn.Module) -> nn.Module:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if self.device_.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            # the trainer started the group, so it ends it, before the interpreter's teardown:
            # a rank that exits while its peer still talks aborts the peer ("terminate called
            # without an active exception")
            atexit.register(_end_process_group)
        ids = [self.device_.index] if self.device_.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(staged, device_ids=ids)

    def _progress(self, start: int, total: int | None = None, desc: str = "train") -> Any:
        if not self.progress_bar or self.rank_ != 0 or not sys.stderr.isatty():
            return None
        from tqdm.auto import tqdm

        total = self.max_steps if total is None else total
        return tqdm(total=total, initial=start, desc=desc, leave=False)

    def _log(self, history: dict, window: dict, step: int) -> None:
        history.setdefault("step", []).append(step)
        for k, v in window.items():
            history.setdefault(k, []).append(float(np.mean(v)))
        if self.rank_ == 0:
            parts = " ".join(f"{k}={history[k][-1]:.4g}" for k in sorted(window))
            log.info("step %d/%d %s", step, self.max_steps, parts)

    def _evaluate(self, model, val, unlabeled, step, history, state) -> None:
        if self.selection == "last":
            return
        if self.selection == "source_val":
            pred = self.predict_logits(model, val.X).argmax(1)
            mask = val.y != UNLABELED
            score = float(np.mean(pred[mask] == val.y[mask]))
        else:  # lower entropy is better: negate so that larger is better
            proba = torch.softmax(torch.from_numpy(self.predict_logits(model, unlabeled.X)), 1)
            score = -float(-(proba * torch.log(proba.clamp_min(1e-12))).sum(1).mean())
        model.train()
        history.setdefault("eval_step", []).append(step)
        history.setdefault("eval_score", []).append(score)
        if state["best_score"] is None or score > state["best_score"]:
            state["best_score"], state["best_step"] = score, step
            state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def _step(self, optimizers: list[torch.optim.Optimizer], losses: list[torch.Tensor],
              scaler: Any) -> None:  # fmt: skip
        """One step of every active optimiser on its own loss.

        One optimiser: the plain backward. Several: each loss's gradient with respect to its
        optimiser's parameters only, all taken before any parameter moves (the players'
        simultaneous update), then every optimiser steps.
        """
        scale = (lambda v: scaler.scale(v)) if scaler is not None else (lambda v: v)
        if len(optimizers) == 1:
            optimizers[0].zero_grad(set_to_none=True)
            scale(losses[0]).backward()
        else:
            grads = []
            for k, (opt, loss) in enumerate(zip(optimizers, losses, strict=True)):
                ps = [p for g in opt.param_groups for p in g["params"]]
                last = k == len(losses) - 1
                grads.append(torch.autograd.grad(scale(loss), ps, retain_graph=not last,
                                                 allow_unused=True))  # fmt: skip
            for opt, gs in zip(optimizers, grads, strict=True):
                ps = [p for g in opt.param_groups for p in g["params"]]
                for p, g in zip(ps, gs, strict=True):
                    p.grad = g
        for opt in optimizers:
            if self.grad_clip:
                if scaler is not None:
                    scaler.unscale_(opt)
                ps = [p for g in opt.param_groups for p in g["params"]]
                nn.utils.clip_grad_norm_(ps, self.grad_clip)
            if scaler is not None:
                scaler.step(opt)
            else:
                opt.step()
        if scaler is not None:
            scaler.update()

    def _stop(self, update: Update) -> int:
        return self.max_steps if update.stop is None else int(update.stop)

    def _update_lambda(self, update: Update) -> Callable[[int], float]:
        """The schedule of ``update`` over its own active steps (the trainer's by default)."""
        schedule = self.schedule if update.schedule is None else update.schedule
        n = self._stop(update) - update.start
        return lambda k: self._schedule_factor(schedule, k, n)

    def _save(self, path, model, updates, optimizers, schedulers, scaler, src_stream,
              tgt_stream, history, state) -> None:  # fmt: skip
        if path is None or self.rank_ != 0:
            return
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizers": {
                    u.name: o.state_dict() for u, o in zip(updates, optimizers, strict=True)
                },
                "schedulers": {
                    u.name: s.state_dict() for u, s in zip(updates, schedulers, strict=True)
                },
                "scaler": None if scaler is None else scaler.state_dict(),
                "src_stream": src_stream.state(),
                "tgt_stream": None if tgt_stream is None else tgt_stream.state(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state() if self.device_.type == "cuda" else None,
                "history": history,
                "fingerprint": self.fingerprint_,
                **state,
            },
            path,
        )

    def _non_finite(self, step, loss, logs, xs) -> NonFiniteLossError:
        x = xs.detach().float()
        finite = torch.isfinite(x)
        stats = (
            f"input mean {x[finite].mean():.4g}, std {x[finite].std():.4g}, "
            f"min {x[finite].min():.4g}, max {x[finite].max():.4g}, "
            f"{int((~finite).sum())} non-finite values"
            if finite.any()
            else "every input value is non-finite"
        )
        parts = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
        path = self._checkpoint_path()
        kept = (
            f"; the last good checkpoint is {path}"
            if path is not None and path.exists()
            else "; no checkpoint was written"
        )
        return NonFiniteLossError(
            f"non-finite training loss ({float(loss.detach())}) at step {step}: {parts}; "
            f"last batch: {stats}. Lower trainer.lr, the transfer weight, or check the inputs{kept}"
        )

    # ----------------------------------------------------------------- inference

    @torch.no_grad()
    def predict_logits(self, model: nn.Module, X: Any, batch_size: int = 256) -> np.ndarray:
        """Logits of ``model`` on ``X`` (array, sparse matrix or Dataset), in eval mode."""
        return self.forward_layers(model, X, ("logits",), batch_size)["logits"]

    @torch.no_grad()
    def forward_layers(
        self,
        model: nn.Module,
        X: Any,
        names: Iterable[str],
        batch_size: int = 256,
        progress: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Named outputs (``features``, ``logits``, ...) of ``model`` on ``X`` (float32 arrays).

        ``progress`` names a progress bar over the batches (shown as the training bar is).
        """
        if not hasattr(self, "device_"):
            self._validate()
        names = list(names)
        was_training = model.training
        model.eval()
        # a model not trained by this trainer (a frozen pretrained base) may still be elsewhere
        model.to(self.device_)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        data = _DomainData(Domain(X), with_labels=False)
        staged = _Staged(model)
        out: dict[str, list[np.ndarray]] = {k: [] for k in names}
        bar = self._progress(0, total=data.n, desc=progress) if progress else None
        for start in range(0, data.n, batch_size):
            idx = torch.arange(start, min(start + batch_size, data.n))
            x = self._to_device(data.sample_x(idx))
            with self.autocast():
                res = staged(x)
            for k in names:
                if k not in res:
                    raise ConfigError(f"the model has no layer {k!r}; it has {sorted(res)}")
                out[k].append(res[k].float().cpu().numpy())
            if bar is not None:
                bar.update(len(idx))
        if bar is not None:
            bar.close()
        model.train(was_training)
        return {k: np.concatenate(v) for k, v in out.items()}


def _weighted_ce(
    logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy averaged over the batch, each sample scaled by its ``sample_weight``.

    Dividing by the batch size (not the weight sum) keeps the loss a plain mean over samples,
    so DDP's gradient averaging over equal rank slices equals the one-process gradient.
    Unlabeled samples (``-1``) contribute 0.
    """
    mask = y != UNLABELED
    ce = nn.functional.cross_entropy(logits, y.clamp_min(0), reduction="none") * mask
    if weight is not None:
        ce = ce * weight
    return ce.sum() / len(y)


def _end_process_group() -> None:
    """Meet every rank once more, then destroy the process group (registered at exit)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    try:
        dist.barrier()  # a crashed peer makes this raise; torchrun then ends the others
    finally:
        dist.destroy_process_group()
