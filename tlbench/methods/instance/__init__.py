"""Instance-based transfer: reweight or reselect the source (KMM, KLIEP, uLSIF, TrAdaBoosts)."""

from . import kliep, kmm, mstradaboost, tradaboost, ulsif  # noqa: F401
