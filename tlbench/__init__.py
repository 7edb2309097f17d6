"""tlbench: transfer learning under one registry, one task contract and one runner."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# PyTorch's OpenMP threads spin while they wait for work. Beside another busy process (a
# parallel sweep job, a benchmark) that turned a 3 s DAN fit into 29 s on 2 cores; waiting
# passively costs little on an idle machine. It must be set before torch starts its threads,
# so here, on the first tlbench import. An OMP_WAIT_POLICY already set is left alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import ConfigError, DataError, IncompatibleTaskError, MissingDataError, TlbenchError
from .registry import (
    available_datasets,
    available_methods,
    register_dataset,
    register_method,
)
from .task import Domain, RelationalData, TransferTask

__all__ = [
    "ConfigError",
    "DataError",
    "Domain",
    "IncompatibleTaskError",
    "MissingDataError",
    "RelationalData",
    "TlbenchError",
    "TransferTask",
    "available_datasets",
    "available_methods",
    "register_dataset",
    "register_method",
]
