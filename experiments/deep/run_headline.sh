#!/usr/bin/env bash
# The README's DAN MNIST -> USPS headline row under a protocol fixed before the run (issue 16):
# LeNet on 28x28 inputs (the published LeNet protocol's input size), SGD lr 0.01 annealed,
# batch 64 + 64, the methods' default transfer weight, the last step kept. The one free choice,
# the number of steps, is a grid declared here, {2000, 5000}, and chosen per seed by
# selection=source_val (20 % of the MNIST labels held out of the one training, never a USPS
# label). The two grid points run side by side, one thread each.
#   TLBENCH_DATA_DIR=../shared/data bash experiments/deep/run_headline.sh
#   python -m tlbench.report outputs/multirun/deep_headline_mnist_usps --selection all
set -euo pipefail
cd "$(dirname "$0")/../.."
export TLBENCH_DATA_DIR=${TLBENCH_DATA_DIR:-../shared/data} OMP_NUM_THREADS=1
STUDY=${STUDY:-outputs/multirun/deep_headline_mnist_usps}
for steps in 2000 5000; do
  .venv/bin/python -m tlbench -m method=dan label=dan seed=0,1,2 \
    dataset=mnist_usps dataset.source=mnist dataset.target=usps dataset.preprocess=none \
    dataset.image_size=28 method.backbone=lenet 'method.input_shape=[1,28,28]' \
    trainer.max_steps=$steps trainer.batch_size=64 trainer.progress_bar=false \
    selection=source_val hydra.sweep.dir="$STUDY" > "$STUDY.steps$steps.log" 2>&1 &
done
wait
