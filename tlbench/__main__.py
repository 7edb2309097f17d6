"""Command line: ``python -m tlbench method=<name> dataset=<name> [key=value ...]``.

Hydra composes ``conf/config.yaml``; ``-m`` runs a sweep. User errors (a bad value, a missing
data file) print one line and exit with status 2. An impossible method x dataset pair (the
target among the sources, a method that needs labeled target samples given none...) is
recorded as ``skipped``: a single run prints the reason in one line and exits with status 2,
a sweep goes on. In a sweep, a run that fails leaves a ``failed`` record and the sweep goes
on.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .errors import TlbenchError
from .runner import run, summary

log = logging.getLogger("tlbench")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    sweeping = hc.mode == RunMode.MULTIRUN
    try:
        record = run(cfg, hc.runtime.output_dir, list(hc.overrides.task))
    except TlbenchError as exc:
        print(f"tlbench: error: {exc}", file=sys.stderr)
        if sweeping:
            return  # the failed record is written; the other runs go on
        sys.exit(2)
    except Exception as exc:
        if not sweeping:
            raise
        log.exception("run failed; its record says so and the sweep goes on")
        print(f"tlbench: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    print(summary(record))
    if record["status"] == "skipped" and not sweeping:
        print(f"tlbench: skipped: {record.get('reason')}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Entry point of ``python -m tlbench`` and of the ``tlbench`` console script."""
    _hydra_main()


if __name__ == "__main__":
    main()
