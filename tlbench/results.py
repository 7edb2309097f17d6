"""Result records: atomic writing of ``result.json`` and reading them back.

One record per run, self-describing (see the design's "result record"); aggregation reads the
records, never folder names.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as JSON so that ``path`` holds either the old or the new file, never half.

    The JSON goes to a temporary file in the same folder, is flushed to disk, then renamed
    over ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=_jsonable)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj) if isinstance(obj, set | frozenset) else list(obj)
    return repr(obj)


def write_result(output_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``output_dir/result.json`` atomically and return the path."""
    return write_json_atomic(Path(output_dir) / RESULT_FILE, record)


HISTORY_FILE = "history.csv"


def history_rows(history: Any, stage: str = "") -> list[dict[str, Any]]:
    """The trainer's history as rows, one per logged step (evaluations joined on their step).

    A method with several training stages (``finetune``) keeps one history per stage: its rows
    carry the stage's name.
    """
    if isinstance(history, list | tuple):  # one dict per iteration (e.g. JDA's)
        return [{"stage": stage, "step": i + 1, **h} for i, h in enumerate(history)
                if isinstance(h, dict)]  # fmt: skip
    if not isinstance(history, dict):
        return []
    if history and all(isinstance(v, dict) for v in history.values()):
        return [row for name, h in history.items() for row in history_rows(h, name)]
    rows: dict[int, dict[str, Any]] = {}
    steps = history.get("step", [])
    for i, step in enumerate(steps):
        row = rows.setdefault(int(step), {"stage": stage, "step": int(step)})
        for k, v in history.items():
            if k not in ("step", "eval_step", "eval_score") and i < len(v):
                row[k] = v[i]
    for step, score in zip(history.get("eval_step", []), history.get("eval_score", []),
                           strict=False):  # fmt: skip
        rows.setdefault(int(step), {"stage": stage, "step": int(step)})["eval_score"] = score
    return [rows[k] for k in sorted(rows)]


def write_history(output_dir: str | Path, history: Any) -> Path | None:
    """Write the training curves to ``output_dir/history.csv`` (atomically).

    Also to ``output_dir/tensorboard`` when TensorBoard is installed (``tlbench[tensorboard]``):
    ``tensorboard --logdir outputs`` then shows every run's curves.
    """
    import csv
    import io

    rows = history_rows(history)
    if not rows:
        return None
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    path = Path(output_dir) / HISTORY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    _write_tensorboard(Path(output_dir) / "tensorboard", rows)
    return path


def _write_tensorboard(folder: Path, rows: list[dict[str, Any]]) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional extra is not installed
        return
    with SummaryWriter(log_dir=str(folder)) as writer:
        for row in rows:
            prefix = f"{row['stage']}/" if row.get("stage") else ""
            for k, v in row.items():
                if k not in ("stage", "step") and isinstance(v, int | float):
                    writer.add_scalar(prefix + k, v, row["step"])


def collect(root: str | Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Read every ``result.json`` under ``root`` (recursively).

    Each record gains a ``_path`` key with the file it came from. A file that is not a record
    (truncated by a kill outside tlbench's atomic writes, or foreign) is skipped; when
    ``problems`` is given, one line per such file is appended to it.
    """
    records = []
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            if problems is not None:
                problems.append(f"{path}: unreadable record ({type(exc).__name__}: {exc})")
            continue
        if isinstance(rec, dict) and "method" in rec and "status" in rec:
            rec["_path"] = str(path)
            records.append(rec)
        elif problems is not None:
            problems.append(f"{path}: not a tlbench record")
    return records
