#!/usr/bin/env bash
# Round 3 of issue 11. Development (docs/results.md §0d): the term set, val split only.
# FC-Siam-diff, multi_deg_x4 (the generator's default change rate), seeds 0-2, from scratch,
# the HiCD variants of dev3_variants.py at 300 and 800 iterations (the 800-iteration teachers
# of the 300 cell are shared), then the pick by select_variant.py over both cells.
# Confirmation (§0e): the core cell (800 iterations, test split) on fresh seeds 8-24 with the
# pick, lq, ft_lq and FitNets, one runner call per seed so that each finished seed holds every
# method; judged once complete by
#   check_success.py --variant <pick> --cells core --seeds 8-24 --min-wins 14 <record>/r3_conf_core/results.csv
#   PYTHONPATH=$PWD PYTHON=python WORK=work_dirs/issue11_r3 bash tools/experiments/issue11_round3.sh
# Each cell's results.csv is copied to $RECORD/r3_<cell>/results.csv when it ends (never over a
# record with more rows); a work dir without rows starts from the recorded ones (rows.sh).
set -uo pipefail
PY=${PYTHON:-python}
W=${WORK:-work_dirs/issue11_r3}
RECORD=${RECORD:-docs/experiments/issue11}
VARIANTS=configs/_base_/hicd/dev3_variants.py
BASE=(--detector fc_siam_diff --settings multi_deg_x4 --crop 64 --batch-size 8
      --teacher-iters 800 --threads 1 --quiet --jobs "${JOBS:-2}")
DEV=(--methods hicd --variants "$VARIANTS" --seeds 0 1 2 --split val)
CONF_SEEDS=${CONF_SEEDS:-$(seq 8 24)}
mkdir -p "$W"

. "$(dirname "${BASH_SOURCE[0]}")/rows.sh"
cell() { run_cell r3 "$@"; }  # name args...: one runner call, see rows.sh

cell dev300 "${DEV[@]}" --iters 300
T=fc_siam_diff_synthetic
for s in 0 1 2; do  # same teacher config, seed and iterations: the runner reuses a finished one
  if [ -f "$W/dev300/$T/seed$s/teacher_iters800/run_info.json" ] && [ ! -e "$W/dev800/$T/seed$s/teacher_iters800" ]; then
    mkdir -p "$W/dev800/$T/seed$s"
    ln -s "$(realpath "$W/dev300/$T/seed$s/teacher_iters800")" "$W/dev800/$T/seed$s/teacher_iters800"
  fi
done
cell dev800 "${DEV[@]}" --iters 800
"$PY" tools/experiments/select_variant.py "$VARIANTS" "$W/chosen_variant.py" \
  "$RECORD/r3_dev300/results.csv" "$RECORD/r3_dev800/results.csv" | tee "$W/pick.txt" || exit 1

for s in $CONF_SEEDS; do
  cell conf_core --methods teacher_hq lq ft_lq feat_mse hicd --variants "$W/chosen_variant.py" \
    --seeds "$s" --iters 800 --split test --finetune-cfg-options optim_wrapper.optimizer.lr=0.0002
done
