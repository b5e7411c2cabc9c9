#!/usr/bin/env bash
# Round 3 of the issue-11 development (docs/results.md §0d): the term set, val split only.
# FC-Siam-diff, multi_deg_x4 (the generator's default change rate), seeds 0-2, from scratch,
# the HiCD variants of dev3_variants.py at 300 and 800 iterations (the 800-iteration teachers
# of the 300 cell are shared), then the pick by select_variant.py over both cells.
#   PYTHONPATH=$PWD PYTHON=python WORK=work_dirs/issue11_r3 bash tools/experiments/issue11_round3.sh
# Each cell's results.csv is copied to $RECORD/r3_<cell>/results.csv when it ends (never over a
# record with more rows); a work dir without rows starts from the recorded ones (rows.sh).
set -uo pipefail
PY=${PYTHON:-python}
W=${WORK:-work_dirs/issue11_r3}
RECORD=${RECORD:-docs/experiments/issue11}
VARIANTS=configs/_base_/hicd/dev3_variants.py
COMMON=(--detector fc_siam_diff --settings multi_deg_x4 --methods hicd --variants "$VARIANTS"
        --seeds 0 1 2 --split val --crop 64 --batch-size 8 --teacher-iters 800 --threads 1
        --quiet --jobs "${JOBS:-2}")
mkdir -p "$W"

. "$(dirname "${BASH_SOURCE[0]}")/rows.sh"
cell() {  # name args...: one runner call in $W/<name>, resumed from and recorded to $RECORD
  local name=$1; shift
  mkdir -p "$W/$name"
  restore_rows "$W/$name/results.csv" "$RECORD/r3_$name/results.csv"
  "$PY" tools/run_experiments.py "${COMMON[@]}" --work-dir "$W/$name" "$@" >> "$W/$name.log" 2>&1
  record_rows "$W/$name/results.csv" "$RECORD/r3_$name/results.csv"
}

cell dev300 --iters 300
T=fc_siam_diff_synthetic
for s in 0 1 2; do  # same teacher config, seed and iterations: the runner reuses a finished one
  if [ -f "$W/dev300/$T/seed$s/teacher_iters800/run_info.json" ] && [ ! -e "$W/dev800/$T/seed$s/teacher_iters800" ]; then
    mkdir -p "$W/dev800/$T/seed$s"
    ln -s "$(realpath "$W/dev300/$T/seed$s/teacher_iters800")" "$W/dev800/$T/seed$s/teacher_iters800"
  fi
done
cell dev800 --iters 800
"$PY" tools/experiments/select_variant.py "$VARIANTS" "$W/chosen_variant.py" \
  "$RECORD/r3_dev300/results.csv" "$RECORD/r3_dev800/results.csv" | tee "$W/pick.txt"
