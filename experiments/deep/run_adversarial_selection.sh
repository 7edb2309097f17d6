#!/usr/bin/env bash
# Issue 14: the adversarial rows chosen from a grid by label-free selection, with the oracle
# beside them. Protocol fixed before any of these runs (experiments/deep/README.md, "Honest
# selection of the adversarial rows"):
#   - data, network and batch as run_adversarial.sh (LeNet 32x32, no bottleneck, batch 64 + 64,
#     L2 2.5e-5, 2000 steps, the last step of each fit);
#   - domain_confusion: the grid {SGD as its paper's Caffe setup (lr 0.01, momentum 0.9, the
#     annealing), Adam 1e-3 constant (the optimiser of ADDA's framework, in which the published
#     row was measured)} x confusion weight lambda in {0.01 (the paper's), 0.1, 1};
#   - dann: SGD as run_adversarial.sh, final reversal weight in {0.1, 0.3, 1};
#   - selection=source_val: 20 % of the source labels are held out of the one training and
#     score it (source_val, iwv, dev), entropy scores the unlabeled target; the report picks one
#     grid point per seed for each protocol; the oracle column is labelled as such.
# No target label is read by any protocol. The two directions run side by side, one thread each.
#   TLBENCH_DATA_DIR=../shared/data bash experiments/deep/run_adversarial_selection.sh
#   python -m tlbench.report outputs/multirun/deep_adversarial_selection_mnist_usps --selection all
set -euo pipefail
cd "$(dirname "$0")/../.."
export TLBENCH_DATA_DIR=${TLBENCH_DATA_DIR:-../shared/data} OMP_NUM_THREADS=1
SEEDS=${SEEDS:-0,1,2}
COMMON="dataset=mnist_usps dataset.preprocess=none dataset.image_size=32 method.backbone=lenet
  method.input_shape=[1,32,32] method.bottleneck_dim=0 trainer.batch_size=64
  trainer.weight_decay=2.5e-5 trainer.max_steps=2000 trainer.progress_bar=false
  selection=source_val"
ADAM="trainer.optimizer=adam trainer.lr=0.001 trainer.schedule=constant"
run() {  # source target
  local out=outputs/multirun/deep_adversarial_selection_$1_$2
  local py=".venv/bin/python -m tlbench -m seed=$SEEDS dataset.source=$1 dataset.target=$2 $COMMON"
  mkdir -p "$out"
  $py method=domain_confusion label=domain_confusion method.confusion_weight=0.01,0.1,1 \
    hydra.sweep.dir=$out/domain_confusion_sgd >> "$out.log" 2>&1
  $py method=domain_confusion label=domain_confusion method.confusion_weight=0.01,0.1,1 $ADAM \
    hydra.sweep.dir=$out/domain_confusion_adam >> "$out.log" 2>&1
  $py method=dann label=dann method.discriminator_hidden=[500,500] \
    method.domain_weight=0.1,0.3,1 hydra.sweep.dir=$out/dann >> "$out.log" 2>&1
}
run mnist usps &
run usps mnist &
wait
