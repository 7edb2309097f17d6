#!/usr/bin/env bash
# MNIST <-> USPS (16x16 JDA digits) with lenet: source_only_deep, mmd (DDC), dan; 3 seeds.
# Hyperparameters are fixed in advance (no selection on target labels): SGD lr 0.01, momentum 0.9,
# DAN lr annealing, 2000 steps of 64 + 64 images, the methods' default transfer weights.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TLBENCH_DATA_DIR=${TLBENCH_DATA_DIR:-../shared/data}
for pair in "mnist usps" "usps mnist"; do
  set -- $pair
  for method in source_only_deep mmd dan; do
    .venv/bin/python -m tlbench -m method=$method seed=0,1,2 \
      dataset=mnist_usps dataset.source=$1 dataset.target=$2 dataset.preprocess=none \
      method.backbone=lenet 'method.input_shape=[1,16,16]' \
      trainer.max_steps=2000 trainer.batch_size=64 trainer.progress_bar=false selection=none \
      hydra.sweep.dir=outputs/multirun/deep_mnist_usps_$1_$2
  done
done
