"""Instance-based transfer: reweight or reselect the source (KMM, KLIEP, uLSIF, TrAdaBoost)."""

from . import kliep, kmm, tradaboost, ulsif  # noqa: F401
