"""Parameter-based transfer: pretrained convolutional bases, bottleneck features, fine-tuning."""

from . import finetune  # noqa: F401
