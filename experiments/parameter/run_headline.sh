#!/usr/bin/env bash
# The README's Dogs-vs-Cats fine-tuning headline row under a protocol fixed before the run (issue 16):
# EfficientNet-Lite0 (offline ImageNet weights) at its native 224x224, a pooled top, the last 3
# blocks fine-tuned at lr 1e-3, 10 bottleneck epochs, channels-last memory (speed only). The one
# free choice, the stage 2 schedule, is a grid declared here, {constant lr for 3 epochs, cosine
# decay for 6 epochs} (the two schedules of experiments/parameter/README.md), chosen per seed by
# selection=source_val: 20 % of the training photos are held out of the one training and score
# it; no validation photo (the target and test set) is read to choose.
#   TLBENCH_DATA_DIR=../shared/data bash experiments/parameter/run_headline.sh
#   python -m tlbench.report outputs/multirun/parameter_headline --selection all
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TLBENCH_DATA_DIR:?set TLBENCH_DATA_DIR to the folder holding dogs_vs_cats_small/}"
STUDY=${STUDY:-outputs/multirun/parameter_headline}
COMMON=(method=finetune dataset=catsdogs label=efficientnet_lite0_224 seed=0,1,2
        method.backbone=efficientnet_lite0 method.top.pool=avg method.train_blocks=3
        method.finetune.lr=0.001 method.bottleneck.epochs=10 method.image_size=224
        hardware.channels_last=true trainer.progress_bar=false selection=source_val
        hydra.sweep.dir="$STUDY")
.venv/bin/python -m tlbench -m "${COMMON[@]}" method.finetune.schedule=constant method.finetune.epochs=3
.venv/bin/python -m tlbench -m "${COMMON[@]}" method.finetune.schedule=cosine method.finetune.epochs=6
