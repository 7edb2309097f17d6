"""Instance-based transfer: reweight or reselect the source samples (KMM, TrAdaBoost)."""

from . import kmm, tradaboost  # noqa: F401
