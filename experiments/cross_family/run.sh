#!/usr/bin/env bash
# Cross-family study on Office-Caltech10 SURF (12 tasks): every method that runs without target
# labels, each with a small hyperparameter grid. Every run records the score of every selection
# protocol, so one sweep gives source_val, iwv, dev, entropy and oracle selection side by side.
#   TLBENCH_DATA_DIR=../shared/data bash experiments/cross_family/run.sh [sweep_dir]
#   python -m tlbench.report <sweep_dir> --selection all
set -euo pipefail
SWEEP=${1:-outputs/multirun/cross_family_surf}
PAIRS="dataset.source=amazon,caltech,dslr,webcam dataset.target=amazon,caltech,dslr,webcam"
RUN="python -m tlbench -m dataset=office_caltech_surf hydra.sweep.dir=$SWEEP hydra/launcher=joblib hydra.launcher.n_jobs=${JOBS:-2}"

$RUN $PAIRS method=source_only method.estimator=knn1,logreg,linear_svm
$RUN $PAIRS method=kmm method.B=10,1000 method.estimator=logreg
$RUN $PAIRS method=tca method.mu=0.1,1,10
$RUN $PAIRS method=jda method.mu=0.1,1,10 method.n_components=30,100
$RUN $PAIRS method=coral method.estimator=knn1,linear_svm
# deep: the trainer holds out 10 % of the source labels and keeps the best checkpoint by
# their accuracy, which is also the run's source_val score (no second training run)
DEEP="trainer.max_steps=300 trainer.eval_every=100 trainer.selection=source_val seed=0,1"
$RUN $PAIRS method=source_only_deep trainer.lr=0.01,0.001 $DEEP
$RUN $PAIRS method=dan trainer.lr=0.01,0.001 $DEEP
