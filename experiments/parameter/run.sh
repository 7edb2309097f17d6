#!/usr/bin/env bash
# Parameter transfer on Dogs vs. Cats (experiments/parameter/README.md): bottleneck features, then
# fine-tuning, 3 seeds per configuration. Run from the repository root:
#   TLBENCH_DATA_DIR=../shared/data bash experiments/parameter/run.sh
# The bottleneck features are cached under outputs/cache/features: a rerun skips extraction.
set -euo pipefail
: "${TLBENCH_DATA_DIR:?set TLBENCH_DATA_DIR to the folder holding dogs_vs_cats_small/}"
STUDY=${STUDY:-outputs/multirun/parameter_catsdogs}
run() { python -m tlbench -m method=finetune dataset=catsdogs selection=none seed=0,1,2 \
          hydra.sweep.dir="$STUDY" "$@"; }

# CIFAR-10 ResNet-20 at its native 32x32: the lecture's schedule (50 + 50 epochs), block layer3 fine-tuned
run label=cifar_resnet20_32 method.backbone=cifar_resnet20 \
    method.weights_path="$TLBENCH_DATA_DIR/cifar10_resnet_akamaster" method.image_size=32

# EfficientNet-Lite0 (ImageNet, offline weights) at the lecture's 150x150 and at its native 224x224:
# a global-average-pooled top, the last 3 blocks (stage6, stage7, head) fine-tuned at lr 1e-3,
# 10 bottleneck epochs; 6 fine-tuning epochs at 150, 3 at 224 (CPU time)
EFFNET=(method.backbone=efficientnet_lite0 method.top.pool=avg method.train_blocks=3
        method.finetune.lr=0.001 method.bottleneck.epochs=10)
run label=efficientnet_lite0_224 "${EFFNET[@]}" method.image_size=224 method.finetune.epochs=3
run label=efficientnet_lite0_150 "${EFFNET[@]}" method.image_size=150 method.finetune.epochs=6

# The same with a longer stage 2 that decays its learning rate to 0 (cosine), so the scored last
# weights come from small steps: 6 epochs at 224, 10 at 150; channels-last memory (faster on CPU).
# At 150 the record also holds the accuracies with mirror-image averaging (tta_hflip): `accuracy`
# and `accuracy_bottleneck` are with it, `accuracy_*_noflip` without it.
COSINE=(method.finetune.schedule=cosine hardware.channels_last=true)
run label=efficientnet_lite0_224_cosine "${EFFNET[@]}" "${COSINE[@]}" method.image_size=224 \
    method.finetune.epochs=6
run label=efficientnet_lite0_150_cosine "${EFFNET[@]}" "${COSINE[@]}" method.image_size=150 \
    method.finetune.epochs=10 method.tta_hflip=true

# VGG16, the lecture's recipe as configured by default (needs vgg16-397923af.pth in the torch hub cache)
if [ -f "$(python -c 'import torch; print(torch.hub.get_dir())')/checkpoints/vgg16-397923af.pth" ]; then
  run label=vgg16_150
fi

python -m tlbench.report "$STUDY" --metric accuracy_bottleneck --out "$STUDY/stage1" --no-plots
python -m tlbench.report "$STUDY" --metric accuracy --out "$STUDY/stage2" --no-plots
for stage in bottleneck finetune; do  # the tta_hflip row without the mirror images
  python -m tlbench.report "$STUDY" --metric "accuracy_${stage}_noflip" \
      --out "$STUDY/${stage}_noflip" --no-plots
done
