"""tlbench: transfer learning under one registry, one task contract and one runner."""

from __future__ import annotations

__version__ = "0.1.0"

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
