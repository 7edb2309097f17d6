#!/usr/bin/env bash
# Every family on Dogs vs. Cats photos (experiments/cross_family/README.md, "Photos"):
#   TLBENCH_DATA_DIR=../shared/data bash experiments/cross_family/run_catsdogs.sh
#   python -m tlbench.report outputs/multirun/catsdogs_families
# Four sweeps into one study folder; a relaunch runs only what is not finished (DONE markers).
set -euo pipefail
: "${TLBENCH_DATA_DIR:?set TLBENCH_DATA_DIR to the folder holding dogs_vs_cats_small/}"
RUN="python -m tlbench -m experiment=catsdogs_families"

# instance (kmm), feature (tca, jda, coral; mmd, dan) and the baselines, no target labels
$RUN
# parameter transfer: the lecture's stage 1 (a top model on the frozen base's features) on the
# same 224 px EfficientNet-Lite0 features, pooled; stage 2 (fine-tuning) is ~10 CPU-minutes a run
# and has its own study (experiments/parameter)
$RUN method=finetune method.stage=bottleneck method.backbone=efficientnet_lite0 \
    method.image_size=224 method.top.pool=avg
# TrAdaBoost needs a few labeled target photos: 5 per class (they leave the test set), with
# source_and_target, the same data without reweighting, as its baseline
$RUN method=tradaboost,source_and_target dataset.target_labeled=5
# the deep methods on the other four corruptions (fixed before the runs with the three above)
$RUN method=dan,mmd,source_only_deep dataset.target_shift=jpeg,brightness,pixelate,grayscale

python -m tlbench.report outputs/multirun/catsdogs_families
python -m tlbench.report outputs/multirun/catsdogs_families --selection all --no-plots \
    --out outputs/multirun/catsdogs_families/all_protocols
