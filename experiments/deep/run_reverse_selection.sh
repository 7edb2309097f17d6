#!/usr/bin/env bash
# Issue 14: DANN's grid chosen by reverse validation, the selection protocol of the DANN paper
# (Ganin et al., JMLR 2016, Section 5.1.2; Zhong et al. 2010). Fixed before any of these runs,
# and after the source_val / iwv / dev / entropy choices of the same grid had been seen
# (experiments/deep/README.md, "Reverse validation of the DANN grid"):
#   - the grid, data, network and schedule of run_adversarial_selection.sh's dann rows
#     (LeNet 32x32, no bottleneck, batch 64 + 64, L2 2.5e-5, SGD 0.01 with the annealing,
#     2000 steps, the last step; final reversal weight in {0.1, 0.3, 1}), 3 seeds;
#   - selection=reverse: the same 20 % of the source labels held out as source_val's (so each
#     forward fit is that grid's fit); the forward model labels the target training digits, a
#     reverse DANN with the same settings learns from them with the other 80 % of the source
#     digits, unlabeled, as its target, and its accuracy on the held-out 20 % is the score.
# No target label is read. The two directions run side by side, one thread each.
#   TLBENCH_DATA_DIR=../shared/data bash experiments/deep/run_reverse_selection.sh
#   python experiments/deep/selection_table.py outputs/multirun/deep_reverse_selection_mnist_usps \
#     outputs/multirun/deep_reverse_selection_usps_mnist
set -euo pipefail
cd "$(dirname "$0")/../.."
export TLBENCH_DATA_DIR=${TLBENCH_DATA_DIR:-../shared/data} OMP_NUM_THREADS=1
SEEDS=${SEEDS:-0,1,2}
COMMON="dataset=mnist_usps dataset.preprocess=none dataset.image_size=32 method.backbone=lenet
  method.input_shape=[1,32,32] method.bottleneck_dim=0 trainer.batch_size=64
  trainer.weight_decay=2.5e-5 trainer.max_steps=2000 trainer.progress_bar=false
  selection=reverse"
run() {  # source target
  local out=outputs/multirun/deep_reverse_selection_$1_$2
  mkdir -p "$out"
  .venv/bin/python -m tlbench -m seed=$SEEDS dataset.source=$1 dataset.target=$2 $COMMON \
    method=dann label=dann method.discriminator_hidden=[500,500] \
    method.domain_weight=0.1,0.3,1 hydra.sweep.dir=$out/dann >> "$out.log" 2>&1
}
run mnist usps &
run usps mnist &
wait
