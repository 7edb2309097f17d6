#!/usr/bin/env bash
# Issue 14: which of the three changes lifted source_only_deep to the published source-only row?
# One factor at a time, each reverted to the earlier tables' setting on top of the protocol of
# run_adversarial.sh (LeNet 32x32, no bottleneck, Adam 1e-3 constant, L2 2.5e-5, batch 64,
# 2000 steps, the last step, selection=none), 3 seeds, both directions:
#   input28    - 28x28 inputs (the earlier tables'), everything else as the protocol;
#   bottleneck - the 256-d bottleneck and a new classifier (bottleneck_dim=256);
#   sgd        - SGD lr 0.01, momentum 0.9, DAN's annealing, weight decay 5e-4 (the defaults).
# Fixed before its runs; nothing is chosen from it (it explains the baseline, it selects nothing).
#   TLBENCH_DATA_DIR=../shared/data bash experiments/deep/run_baseline_ablation.sh
#   python -m tlbench.report outputs/multirun/deep_baseline_ablation_mnist_usps
set -euo pipefail
cd "$(dirname "$0")/../.."
export TLBENCH_DATA_DIR=${TLBENCH_DATA_DIR:-../shared/data} OMP_NUM_THREADS=1
SEEDS=${SEEDS:-0,1,2}
BASE="method=source_only_deep dataset=mnist_usps dataset.preprocess=none method.backbone=lenet
  trainer.batch_size=64 trainer.max_steps=2000 trainer.progress_bar=false selection=none"
AT32="dataset.image_size=32 method.input_shape=[1,32,32]"
ADAM="trainer.optimizer=adam trainer.lr=0.001 trainer.schedule=constant trainer.weight_decay=2.5e-5"
run() {  # source target
  local out=outputs/multirun/deep_baseline_ablation_$1_$2
  local py=".venv/bin/python -m tlbench -m seed=$SEEDS dataset.source=$1 dataset.target=$2 $BASE"
  mkdir -p "$out"
  $py label=ablation_input28 dataset.image_size=28 method.input_shape=[1,28,28] \
    method.bottleneck_dim=0 $ADAM hydra.sweep.dir=$out/input28 >> "$out.log" 2>&1
  $py label=ablation_bottleneck $AT32 method.bottleneck_dim=256 $ADAM \
    hydra.sweep.dir=$out/bottleneck >> "$out.log" 2>&1
  $py label=ablation_sgd $AT32 method.bottleneck_dim=0 trainer.optimizer=sgd trainer.lr=0.01 \
    trainer.schedule=dan trainer.weight_decay=5e-4 hydra.sweep.dir=$out/sgd >> "$out.log" 2>&1
}
run mnist usps &
run usps mnist &
wait
