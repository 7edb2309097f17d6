"""Parameter-based transfer: fine-tuning, A-SVM, RMTL, TaskTrAdaBoost (source classifiers)."""

from . import asvm, finetune, rmtl, tasktradaboost  # noqa: F401
