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
