"""One run, as a plain function: config -> task -> method.fit -> predict -> metrics -> record.

``python -m tlbench`` wraps :func:`run` with Hydra; tests call it directly. This module is the
one place that calls Hydra's ``instantiate``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from . import gpus
from .errors import ConfigError, IncompatibleTaskError, NotScorableError, TlbenchError
from .metrics import classification_metrics
from .registry import DATASETS, METHODS
from .results import RESULT_FILE, write_json_atomic, write_result
from .selection import PROTOCOLS, check_density_ratio, check_val_fraction, score_all
from .task import TransferTask

log = logging.getLogger(__name__)
DONE_FILE = "DONE"


def run_id(text: str) -> str:
    """A short stable hash naming a run (of its overrides in folder names, of its config)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# Sweep sub-folders are named by ``${tlbench_id:${hydra:job.override_dirname}}``.
OmegaConf.register_new_resolver("tlbench_id", run_id, replace=True)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use the global generator)
    torch.manual_seed(seed)


def _instantiate(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with user errors turned into one-line messages."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if "_target_" not in node:
        raise ConfigError(f"the {what} config has no _target_")
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, TlbenchError):
            raise cause from None
        if isinstance(cause, TypeError) and "argument" in str(cause):
            raise ConfigError(f"{what} {node._target_}: {cause}") from None
        raise


#: Dataset options every dataset takes (``conf/config.yaml``): the runner applies them to the
#: adapter's task, so every image dataset gets them and no adapter writes them again.
GENERIC_DATASET_KEYS = ("features", "target_shift", "shift_severity")


def dataset_options(cfg: DictConfig) -> dict[str, Any]:
    """The generic dataset options of ``cfg`` (:data:`GENERIC_DATASET_KEYS`), resolved."""
    node = cfg.get("dataset") or {}
    return {k: OmegaConf.select(cfg, f"dataset.{k}") for k in GENERIC_DATASET_KEYS if k in node}


def build_task(cfg: DictConfig) -> TransferTask:
    """Load the task described by ``cfg.dataset`` (with its target shift, if any)."""
    from .datasets.shifts import check_severity, parse_shift, shift_task

    opts = dataset_options(cfg)
    node = cfg.dataset
    source = _source_option(cfg)
    if opts or isinstance(source, list):  # the adapter takes only its own options
        adapter = OmegaConf.to_container(node, resolve=True)
        node = OmegaConf.create({k: v for k, v in adapter.items() if k not in opts})
        if isinstance(source, list):
            node.source = _check_source_list(cfg, source)
    task = _instantiate(node, "dataset")
    if not isinstance(task, TransferTask):
        raise ConfigError(
            f"dataset {cfg.dataset._target_} returned {type(task).__name__}, not a TransferTask"
        )
    severity = opts.get("shift_severity", 3)
    shift = parse_shift(opts.get("target_shift"), severity, int(cfg.get("seed", 0)))
    if shift is None and severity is not None:
        check_severity(severity)  # a bad severity is an error with or without a shift
    return task if shift is None else shift_task(task, shift)


def _source_option(cfg: DictConfig) -> Any:
    """``dataset.source`` as plain Python (a list for a multi-source task)."""
    node = cfg.get("dataset") or {}
    value = node.get("source") if "source" in node else None
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _check_source_list(cfg: DictConfig, sources: list[Any]) -> str | list[Any]:
    """A list of one source is that source; longer lists need a multi-source dataset."""
    if len(sources) == 1:
        return sources[0]
    target = OmegaConf.select(cfg, "dataset._target_", default=None)
    entry = DATASETS.find(target) if target else None
    if not (entry and entry.meta.get("multi_source")):
        name = entry.name if entry else target
        multi = ", ".join(e.name for e in DATASETS if e.meta.get("multi_source"))
        raise ConfigError(
            f"dataset {name!r} takes one source domain, dataset.source lists {len(sources)}; "
            f"multi-source tasks: {multi}"
        )
    return sources


def source_mode(task: TransferTask, method: Any) -> str:
    """How ``method`` reads the task's sources: ``single``, ``pooled`` or ``per source``."""
    if not task.is_multi_source:
        return "single"
    return "per source" if method.multi_source == "per_source" else "pooled"


def features_for(cfg: DictConfig, task: TransferTask, method: Any, trainer: Any) -> TransferTask:
    """The task a method reads: an image task as pooled frozen features for tabular methods.

    ``dataset.features=<backbone>`` serves the photos to a method that cannot read images as
    the features of that pretrained network (:func:`tlbench.features.as_tabular`); methods
    that read images (deep methods, fine-tuning) keep the photos.
    """
    from .features import as_tabular, parse_spec

    if task.kind != "image" or "image" in method.supports:
        return task
    spec = parse_spec(dataset_options(cfg).get("features"), int(cfg.get("seed", 0)))
    if spec is None:
        if "tabular" in method.supports:
            raise IncompatibleTaskError(
                f"method {method.__class__.__name__} reads feature vectors and this dataset holds "
                "images: set dataset.features=<backbone> (e.g. imagenet) to give it the frozen "
                "features of a pretrained network"
            )
        return task
    cache = OmegaConf.select(cfg, "paths.cache_dir", default=None)
    return as_tabular(task, spec, trainer=trainer,
                      cache_dir=None if cache is None else Path(cache) / "features")  # fmt: skip


def build_method(cfg: DictConfig) -> Any:
    """Build the (unfitted) method described by ``cfg.method``."""
    from .methods.base import TransferMethod

    method = _instantiate(cfg.method, "method")
    if not isinstance(method, TransferMethod):
        raise ConfigError(f"method {cfg.method._target_} is not a TransferMethod")
    return method


def build_trainer(cfg: DictConfig, output_dir: Path, device: str | None = None) -> Any | None:
    """Build the trainer of ``cfg.trainer`` (deep methods use it; shallow ones ignore it).

    The run folder is passed as ``output_dir`` so checkpoints live beside ``result.json``;
    ``device`` replaces the configured device (a GPU claimed for this run).
    """
    node = cfg.get("trainer")
    if node is None:
        return None
    extra = {"device": device} if device is not None else {}
    return _instantiate(node, "trainer", output_dir=str(output_dir),
                        run_fingerprint=training_fingerprint(cfg), **extra)  # fmt: skip


#: Trainer options that do not change what is trained (where, how fast, how it is shown, or
#: whether it is checkpointed): a checkpoint stays valid across a change of them.
_NOT_TRAINING = ("device", "num_workers", "channels_last", "compile", "deterministic",
                 "log_every", "checkpoint_every", "resume", "progress_bar")  # fmt: skip


def training_fingerprint(cfg: DictConfig) -> str:
    """A hash of what a run trains on and with: method, dataset, seed and trainer options.

    Checkpoints carry it (with the data's own hash, see :meth:`Trainer.fingerprint`), so that
    ``trainer.resume`` never continues another configuration's training.
    """
    config = OmegaConf.to_container(cfg, resolve=True)
    trainer = {k: v for k, v in (config.get("trainer") or {}).items() if k not in _NOT_TRAINING}
    keep = {k: config.get(k) for k in ("method", "dataset", "seed")}
    return run_id(json.dumps({**keep, "trainer": trainer}, sort_keys=True, default=str))


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, Any]:
    import sklearn
    import torch

    from . import __version__

    return {
        "tlbench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }


def _lookup(registry: Any, node: DictConfig) -> tuple[str, Any]:
    """Registry name (or the raw ``_target_``) and registered object of a config node."""
    target = OmegaConf.select(node, "_target_", default=None)
    entry = registry.find(target) if target else None
    return (entry.name, entry.obj) if entry else (str(target), None)


def run(
    cfg: DictConfig, output_dir: str | Path, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Run one method on one task and write ``output_dir/result.json``.

    Parameters
    ----------
    cfg : DictConfig
        The composed configuration (``method``, ``dataset``, ``seed``, ...).
    output_dir : str or Path
        Where the record is written (Hydra's run folder on the command line).
    overrides : list of str, optional
        The command-line overrides, stored in the record.

    Returns
    -------
    record : dict
        The record as written. ``status`` is ``ok``, or ``skipped`` (the method cannot run on
        this task; ``reason`` says why). Any other error writes a ``failed`` record and is
        raised again.
    """
    output_dir = Path(output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    identity = run_id(json.dumps({k: v for k, v in config.items() if k != "rerun"}, sort_keys=True))
    done = _finished(output_dir, identity)
    if done is not None and not cfg.get("rerun", False):
        log.info("already done (%s): %s", identity, output_dir)
        return done
    seed = int(cfg.get("seed", 0))
    seed_everything(seed)
    method_name, method_cls = _lookup(METHODS, cfg.method)
    selection = OmegaConf.select(cfg, "selection.name", default="none")
    record: dict[str, Any] = {
        "run_id": identity,
        "method": method_name,
        "label": cfg.get("label") or method_name,
        "family": getattr(method_cls, "family", None),
        "dataset": _lookup(DATASETS, cfg.dataset)[0],
        "source": _source_option(cfg),
        "target": cfg.dataset.get("target"),
        "seed": seed,
        "selection": selection,
        "selection_score": None,
        "status": "failed",
        "reason": None,
        "metrics": {},
        "fit_seconds": None,
        "predict_seconds": None,
        "device": "cpu",
        "precision": "fp64",
        "started_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config": config,
        "overrides": list(overrides or []),
        "versions": _versions(),
        "git_commit": _git_commit(),
    }
    stack = contextlib.ExitStack()
    try:
        if selection not in PROTOCOLS:
            raise ConfigError(
                f"unknown selection {selection!r}; choose one of {', '.join(PROTOCOLS)}"
            )
        val_fraction = OmegaConf.select(cfg, "selection.val_fraction", default=0.2)
        check_val_fraction(val_fraction)
        density_ratio = OmegaConf.select(cfg, "selection.density_ratio", default="logistic")
        check_density_ratio(density_ratio)
        if cfg.get("trainer") is not None:  # its numbers, before any data is read
            _instantiate(cfg.trainer, "trainer", output_dir=str(output_dir)).check_options()
        task = build_task(cfg)
        record.update(
            source=task.source.name,
            sources=list(task.source_names),
            target=task.target.name,
            protocol=task.protocol,
            kind=task.kind,
            n_source=len(task.source),
            n_target=len(task.target),
            n_target_labeled=task.target.n_labeled,
            n_test=len(task.test) if task.test is not None else 0,
            task_info=task.info,
        )
        method = build_method(cfg)
        record["family"] = method.family
        method.check_sources(task)
        record["source_mode"] = source_mode(task, method)
        if task.is_multi_source:
            record["n_source_per_domain"] = {d.name: len(d) for d in task.sources}
        device = None
        if OmegaConf.select(cfg, "trainer.device", default=None) == gpus.FREE:
            device = f"cuda:{stack.enter_context(gpus.claim_gpu())}"  # held until the run ends
            record["claimed_device"] = device
        trainer = build_trainer(cfg, output_dir, device)
        t0 = time.perf_counter()
        task = features_for(cfg, task, method, trainer)
        record.update(kind=task.kind, task_info=task.info)
        fit_task, heldout = _training_task(task, method, selection, val_fraction, seed)
        if heldout is not None:
            record["trained_on"] = (
                f"{len(fit_task.source)} of the {len(task.source)} labeled source samples: "
                f"{len(heldout[1])} held out to score selection={selection} (one training)"
            )
        method.fit(fit_task, trainer)
        record["fit_seconds"] = time.perf_counter() - t0
        _write_history(output_dir, getattr(method, "history_", None))
        t0 = time.perf_counter()
        y_pred = method.predict(task.test.X)
        record["predict_seconds"] = time.perf_counter() - t0
        record["metrics"] = classification_metrics(task.test.y, y_pred)
        if hasattr(method, "intermediate_predictions"):  # e.g. finetune's stage 1
            for stage, pred in method.intermediate_predictions(task.test.X).items():
                stage_metrics = classification_metrics(task.test.y, pred)
                record["metrics"][f"accuracy_{stage}"] = stage_metrics["accuracy"]
        if task.kind == "relational" and hasattr(method, "predict_proba"):
            from .methods.relational.metrics import relational_metrics

            p_true = method.predict_proba(task.test.X)[:, 1]
            record["metrics"].update(relational_metrics(task.test.y, p_true))
        record["classifier"] = getattr(method, "classifier_", None) or (
            method.final_classifier or None
        )
        record["device"] = getattr(method, "device_", "cpu")
        record["precision"] = getattr(method, "precision_", "fp64")
        record["diagnostics"] = dict(getattr(method, "diagnostics_", {}) or {})
        t0 = time.perf_counter()
        try:
            scores, record["selection_info"] = score_all(
                selection,
                task=task,
                method=method,
                make_method=lambda: build_method(cfg),
                trainer=trainer,
                test_accuracy=record["metrics"]["accuracy"],
                val_fraction=val_fraction,
                seed=seed,
                heldout=heldout,
                density_ratio=density_ratio,
            )
            record["selection_scores"] = scores
            record["selection_score"] = scores.get(selection)
        except (IncompatibleTaskError, NotScorableError) as exc:
            # e.g. a class with one sample cannot be held out: the run stands, unscored
            record["selection_info"] = {"note": f"not scored: {exc}"}
        record["selection_seconds"] = time.perf_counter() - t0
        record["status"] = "ok"
    except IncompatibleTaskError as exc:
        record.update(status="skipped", reason=str(exc))
        log.info("skipped: %s", exc)
    except BaseException as exc:
        stack.close()
        record["reason"] = f"{type(exc).__name__}: {exc}"
        record["finished_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        if _rank_zero():
            (output_dir / DONE_FILE).unlink(missing_ok=True)
            write_result(output_dir, record)
        raise
    stack.close()
    record["finished_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    if _rank_zero():  # under torchrun every rank runs this function; one writes
        record["result_path"] = str(write_result(output_dir, record))
        write_json_atomic(output_dir / DONE_FILE, {"run_id": identity, "status": record["status"]})
    return record


def _training_task(
    task: TransferTask, method: Any, selection: str, val_fraction: float, seed: int
) -> tuple[TransferTask, tuple[Any, Any] | None]:
    """What ``fit`` sees, and the ``(train, val)`` source split when it is held out of it.

    A method that is costly to train (``scores_on_holdout``: the deep ones) is trained once:
    the selection protocol's source samples are held out of that one training and score it,
    instead of a second training on the rest. The record says so (``trained_on``).
    """
    from dataclasses import replace

    from .selection import NEEDS_VALIDATION, split_source

    plain = task.without_test()
    if selection not in NEEDS_VALIDATION or not getattr(method, "scores_on_holdout", False):
        return plain, None
    try:
        train, val = split_source(task, val_fraction, seed)
    except NotScorableError:  # e.g. a class too small to hold out: trained on all, unscored
        return plain, None
    return replace(plain, source=train), (train, val)


def _write_history(output_dir: Path, history: Any) -> None:
    """The training curves beside the record: ``history.csv``, and TensorBoard when installed."""
    if not history or not _rank_zero():
        return
    from .results import write_history

    write_history(output_dir, history)


def _rank_zero() -> bool:
    """Whether this process writes records: always, except the non-zero ranks under torchrun."""
    return int(os.environ.get("RANK", "0")) == 0


def _finished(output_dir: Path, identity: str) -> dict[str, Any] | None:
    """The record of a finished run of the same config in ``output_dir``, if there is one."""
    try:
        marker = json.loads((output_dir / DONE_FILE).read_text(encoding="utf-8"))
        record = json.loads((output_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if marker.get("run_id") != identity or record.get("run_id") != identity:
        return None
    return record if record.get("status") in ("ok", "skipped") else None


def summary(record: dict[str, Any]) -> str:
    """A few lines for the terminal: method, task, network, target accuracy, the record."""
    task = f"{record['dataset']}"
    if record.get("source") or record.get("target"):
        task += f" ({record.get('source')} -> {record.get('target')}"
        info = record.get("task_info") or {}
        if info.get("target_shift"):
            task += f", target corrupted: {info['target_shift']} severity {info['shift_severity']}"
        task += ")"
    lines = [f"method    {record['method']} ({record.get('family')})", f"task      {task}"]
    feats = (record.get("task_info") or {}).get("features")
    if feats:
        weights = "pretrained" if feats.get("pretrained") else "random weights"
        lines.append(f"features  {feats['backbone']} ({weights}, frozen, pooled) at "
                     f"{feats['image_size']} px, read as a tabular task")  # fmt: skip
    net = (record.get("diagnostics") or {}).get("network")
    if net:
        lines.append(f"network   {_network_line(net)}")
    if record.get("trained_on"):
        lines.append(f"trained   on {record['trained_on']}")
    if record["status"] == "ok":
        m = record["metrics"]
        lines.append(
            f"accuracy  {100 * m['accuracy']:.2f} % on {m['n_test']} target test samples "
            f"({record.get('protocol')} protocol, seed {record['seed']})"
        )
        fit, pred = record["fit_seconds"], record["predict_seconds"]
        lines.append(f"time      fit {fit:.2f} s, predict {pred:.2f} s")
    else:
        lines.append(f"status    {record['status']}: {record.get('reason')}")
    lines.append(f"record    {record.get('result_path')}")
    return "\n".join(lines)


def _network_line(net: dict[str, Any]) -> str:
    """How a deep method's backbone was chosen and trained, in one line."""
    text = net["backbone"] + (" (pretrained)" if net.get("pretrained") else "")
    if net.get("image_size"):
        text += f" at {net['image_size']} px"
    tb = net.get("train_blocks")
    if tb is not None:
        hits = net.get("cache_hits") or {}
        cache = f"; frozen features from the cache: {sum(hits.values())} of {len(hits)} sets"
        text += f", last {tb} blocks trained" if tb else ", whole base frozen"
        text += cache
    if net.get("why") and net["why"] != "as configured":
        text += f" [{net['why']}]"
    return text
