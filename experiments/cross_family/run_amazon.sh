#!/usr/bin/env bash
# Cross-family study, Amazon reviews (12 tasks, DANN protocol: source train -> target train
# unlabeled -> target test). JDA and CORAL are left out here: on 5000 dense dimensions each run
# solves 5000 x 5000 eigen-problems (minutes per task on 2 cores).
#   TLBENCH_DATA_DIR=../shared/data bash experiments/cross_family/run_amazon.sh [sweep_dir]
#   python -m tlbench.report <sweep_dir> --selection all
set -euo pipefail
SWEEP=${1:-outputs/multirun/cross_family_amazon}
D="books,dvd,electronics,kitchen"
PAIRS="dataset.source=$D dataset.target=$D"
RUN="python -m tlbench -m dataset=amazon_reviews hydra.sweep.dir=$SWEEP hydra/launcher=joblib hydra.launcher.n_jobs=${JOBS:-2}"

$RUN $PAIRS method=source_only method.estimator=logreg,linear_svm
$RUN $PAIRS method=kmm method.B=10,1000 method.estimator=logreg
$RUN $PAIRS method=tca method.mu=0.1,1,10
DEEP="trainer.max_steps=300 trainer.eval_every=100 trainer.selection=source_val seed=0,1"
$RUN $PAIRS method=source_only_deep trainer.lr=0.01,0.001 $DEEP
$RUN $PAIRS method=dan trainer.lr=0.01,0.001 $DEEP
