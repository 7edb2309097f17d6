"""One sweep job per GPU on a multi-GPU host: each run claims a free device with a lock file.

With ``hardware=cuda_per_job`` the trainer's device is ``cuda:free``; the runner then claims
the first GPU that no other tlbench process on this host holds (an exclusive ``flock`` on
``<lock_dir>/gpu<k>.lock``), runs on ``cuda:<k>`` and releases it when the run ends. Start as
many parallel jobs as there are GPUs (``hydra/launcher=joblib hydra.launcher.n_jobs=<GPUs>``);
a job that finds every GPU taken waits for one. A lock dies with its process, so a killed job
never leaves a GPU claimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError

FREE = "cuda:free"


def default_lock_dir() -> Path:
    """Host-wide folder of the GPU lock files (GPUs are a host-wide resource)."""
    return Path(tempfile.gettempdir()) / "tlbench-gpu-locks"


@contextlib.contextmanager
def claim_gpu(
    n_devices: int | None = None,
    lock_dir: str | Path | None = None,
    poll_seconds: float = 5.0,
    timeout: float | None = None,
) -> Iterator[int]:
    """Hold the first free GPU index for the duration of the ``with`` block.

    Parameters
    ----------
    n_devices : int, optional
        Number of GPUs (default: ``torch.cuda.device_count()``).
    lock_dir : path, optional
        Folder of the lock files (default: :func:`default_lock_dir`).
    poll_seconds : float
        How often a job that found every GPU taken tries again.
    timeout : float, optional
        Give up after this many seconds (default: wait for ever).

    Yields
    ------
    index : int
        The claimed device index.
    """
    if n_devices is None:
        import torch

        n_devices = torch.cuda.device_count()
    if n_devices < 1:
        raise ConfigError("hardware=cuda_per_job needs CUDA GPUs and torch sees none")
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    while True:
        for index in range(n_devices):
            fd = os.open(folder / f"gpu{index}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                yield index
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"no free GPU among {n_devices} after {timeout:.0f} s")
        time.sleep(poll_seconds)
