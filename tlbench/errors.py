"""Exceptions that mean "the user asked for something wrong", not "tlbench has a bug".

The command line prints these as one line (``tlbench: error: ...``) instead of a traceback.
Each one also subclasses the built-in exception a Python user would expect to catch.
"""

from __future__ import annotations


class TlbenchError(Exception):
    """Base class of every user-facing tlbench error."""


class ConfigError(TlbenchError, ValueError):
    """A configuration value is invalid (unknown name, out-of-range value, bad combination)."""


class DataError(TlbenchError, ValueError):
    """Input data are malformed: wrong shapes, NaN or infinite values, labels out of range."""


class MissingDataError(TlbenchError, FileNotFoundError):
    """A data or weights file is missing or unreadable; the message says where and how to get it."""


class IncompatibleTaskError(TlbenchError, ValueError):
    """A method cannot run on a task (wrong task kind, or it needs target labels the task lacks).

    The runner records such a run as ``status: skipped`` instead of failing, so that a full
    method x dataset sweep finishes.
    """


class NotScorableError(TlbenchError, ValueError):
    """A selection protocol cannot score this run (e.g. a class too small to hold one out).

    The runner keeps such a run, unscored, and says why in ``selection_info``; every other
    error while scoring fails the run.
    """
