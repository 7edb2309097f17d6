"""Parameter-based transfer: fine-tuning, TaskTrAdaBoost (source classifiers)."""

from . import finetune, tasktradaboost  # noqa: F401
