#!/usr/bin/env bash
# Round 2 of the issue-11 development (docs/results.md §0c): rare changes (2 %), val split,
# seeds 0-2, FC-Siam-diff, multi_deg_x4, 300 iterations; run as it was on 2026-12-07.
#   step 1: the LQ baseline under the decode-loss recipes r0-r3 (one work dir each)
#   step 2: lq (step 1's r0 rows), ft_lq and the HiCD variants of dev2_variants.py
#   step 1b: the LQ baseline with ChangeBalancedSampler (r4); step 3: step 2 with r4 (chosen
#   by the rule: fewer collapsed runs than r0), the teachers of step 2 shared
#   PYTHONPATH=$PWD PYTHON=python WORK=work_dirs/issue11_r2 bash tools/experiments/issue11_round2.sh
# Each step's results.csv is copied to $RECORD/r2_<cell>/results.csv when it ends (never over a
# record with more rows); a work dir without rows starts from the recorded ones (rows.sh).
set -uo pipefail
PY=${PYTHON:-python}
W=${WORK:-work_dirs/issue11_r2}
RECORD=${RECORD:-docs/experiments/issue11}
BASE=(--detector fc_siam_diff --settings multi_deg_x4 --change-fraction 0.02 --seeds 0 1 2
        --iters 300 --split val --crop 64 --batch-size 8 --teacher-iters 800 --threads 1
        --quiet --jobs "${JOBS:-2}")
mkdir -p "$W"

. "$(dirname "${BASH_SOURCE[0]}")/rows.sh"
cell() { run_cell r2 "$@"; }  # name args...: one runner call, see rows.sh

LOSS=model.decode_head.loss_decode
cell recipe_r0 --methods lq
cell recipe_r1 --methods lq --cfg-options $LOSS.1.loss_weight=1.0
cell recipe_r2 --methods lq --cfg-options "$LOSS.0.class_weight=[1.0,1.0]" $LOSS.1.loss_weight=1.0
cell recipe_r3 --methods lq --cfg-options $LOSS.1.type=LovaszLoss $LOSS.1.loss_type=multi_class \
  "$LOSS.1.classes=[1]" $LOSS.1.per_image=False $LOSS.1.reduction=none $LOSS.1.loss_weight=0.5

# step 2 under r0 (no step-1 recipe left the all-"no change" state); lq rows from step 1
[ -f "$W/cf002/results.csv" ] || [ -f "$RECORD/r2_cf002/results.csv" ] ||
  { mkdir -p "$W/cf002" && cp "$W/recipe_r0/results.csv" "$W/cf002/results.csv"; }
cell cf002 --methods lq ft_lq hicd --variants configs/_base_/hicd/dev2_variants.py \
  --finetune-cfg-options optim_wrapper.optimizer.lr=0.0002

SAMPLER=train_dataloader.sampler.type=ChangeBalancedSampler
cell recipe_r4 --methods lq --cfg-options $SAMPLER
# step 3: lq rows from step 1b, the sampler in every student's and ft_lq's training, the
# teachers of step 2 linked (same config, seed and iterations: the runner reuses them)
T=fc_siam_diff_synthetic-cf0.02
[ -f "$W/r4_cf002/results.csv" ] || [ -f "$RECORD/r2_r4_cf002/results.csv" ] ||
  { mkdir -p "$W/r4_cf002" && cp "$W/recipe_r4/results.csv" "$W/r4_cf002/results.csv"; }
for s in 0 1 2; do
  if [ -d "$W/cf002/$T/seed$s/teacher_iters800" ] && [ ! -e "$W/r4_cf002/$T/seed$s/teacher_iters800" ]; then
    mkdir -p "$W/r4_cf002/$T/seed$s"
    ln -s "$(realpath "$W/cf002/$T/seed$s/teacher_iters800")" "$W/r4_cf002/$T/seed$s/teacher_iters800"
  fi
done
cell r4_cf002 --methods lq ft_lq hicd --variants configs/_base_/hicd/dev2_variants.py \
  --student-cfg-options $SAMPLER \
  --finetune-cfg-options optim_wrapper.optimizer.lr=0.0002 $SAMPLER

# side check: the from-scratch LQ baseline at 800 iterations (the budget of a future cell)
cell lq800 --methods lq --iters 800
