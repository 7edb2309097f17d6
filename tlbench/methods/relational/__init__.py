"""Relational transfer: a clause learner and predicate mapping (TAMAR / TreeBoostler style)."""

from . import learner, predicate_mapping, rdn_boost, treeboostler  # noqa: F401
from .metrics import relational_metrics

__all__ = ["relational_metrics"]
