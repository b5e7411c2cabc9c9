#!/usr/bin/env bash
# The issue-11 protocol of docs/results.md, as run: development on val (seeds 0-2), the pick by
# tools/experiments/select_variant.py, then the confirmation on the test split (fresh seeds 3-7).
# Baselines of the confirmation do not depend on the pick, so they run next to the development;
# the HiCD rows of the confirmation start only after the pick. Every cell has its own work dir.
#   JOBS_SCALE=1 PYTHON=python WORK=work_dirs/issue11 bash tools/experiments/issue11_protocol.sh
# SERIAL=1 runs the cells one after another, each with JOBS parallel trainings (a 2-core
# machine: SERIAL=1 JOBS=2); the order is development, pick, then the confirmation cells.
# RECORD (default docs/experiments/issue11) holds the committed copy of every cell's
# results.csv: a cell whose work dir has no results.csv starts from the recorded one (so a run
# on a fresh machine resumes where the committed rows end; the teachers that unfinished rows
# need are trained again), and each cell's CSV is copied back when the cell ends.
#   WORK=... RECORD=... bash tools/experiments/issue11_protocol.sh record   copies the CSVs
# back now (mid-cell); a record with more rows than the work dir's CSV is never replaced, and
# recording nothing is an error (exit 1), e.g. a WORK that is not the protocol's.
set -uo pipefail
PY=${PYTHON:-python}
W=${WORK:-work_dirs/issue11}
S=${JOBS_SCALE:-1}   # parallel trainings per cell are multiplied by this (1: a 16-core machine)
SERIAL=${SERIAL:-0}
j() { [ "$SERIAL" = 1 ] && echo "${JOBS:-2}" || echo $(( $1 * S > 0 ? $1 * S : 1 )); }
bg() { if [ "$SERIAL" = 1 ]; then "$@"; else "$@" & fi; }  # a cell, in the background unless serial
COMMON=(--crop 64 --batch-size 8 --teacher-iters 800 --threads 1 --quiet)
FT=(--finetune-cfg-options optim_wrapper.optimizer.lr=0.0002)
RUN=("$PY" tools/run_experiments.py)
VARIANTS=configs/_base_/hicd/dev_variants.py
CONF_SEEDS=(3 4 5 6 7)
RECORD=${RECORD:-docs/experiments/issue11}
mkdir -p "$W"

. "$(dirname "${BASH_SOURCE[0]}")/rows.sh"
record() {  # copy every cell's results.csv back to $RECORD; never replaces more rows by fewer
  local csv n=0
  for csv in "$W"/*/results.csv; do
    [ -f "$csv" ] || continue
    record_rows "$csv" "$RECORD/$(basename "$(dirname "$csv")")/results.csv" && n=$((n + 1))
  done
  echo "[protocol] recorded $n cell(s) of $W in $RECORD"
  [ "$n" -gt 0 ]
}
restore() {  # cell: start from the recorded rows when the work dir has none
  restore_rows "$W/$1/results.csv" "$RECORD/$1/results.csv"
}
share_teachers() {  # from to seeds...: reuse finished 800-iteration teachers (SERIAL=1: dev300
  # has finished when dev800 starts; in parallel mode each trains its own)
  local from=$1 to=$2 s d; shift 2
  for s in "$@"; do
    d=fc_siam_diff_synthetic/seed$s/teacher_iters800
    if [ -f "$W/$from/$d/run_info.json" ] && [ ! -L "$W/$to/$d" ] && [ ! -e "$W/$to/$d" ]; then
      mkdir -p "$(dirname "$W/$to/$d")" && ln -s "$(realpath "$W/$from/$d")" "$W/$to/$d"
    fi
  done
}
[ "${1:-}" = record ] && { record; exit $?; }

# 0. the two synthetic datasets, once, before the parallel runners look for them (the runner
# would generate the same folders with the same arguments)
for args in "data/synthetic_cd" "data/synthetic_cd_cf0.02 --change-fraction 0.02"; do
  set -- $args
  [ -f "$1/meta.json" ] || "$PY" tools/make_synthetic_cd.py "$@" --train 800 --val 100 \
    --test 200 --seed 0 > "$W/data_$(basename "$1").log" 2>&1 &
done
wait

# 1. development (val split): FC-Siam-diff, multi_deg_x4, seeds 0-2, 300 and 800 iterations
DEV_PIDS=()
for it in 300 800; do
  dev() {
    restore "dev$it"
    [ "$it" = 800 ] && share_teachers dev300 dev800 0 1 2
    "${RUN[@]}" --detector fc_siam_diff --settings multi_deg_x4 --methods lq ft_lq hicd \
      --variants "$VARIANTS" --seeds 0 1 2 --iters $it --split val --work-dir "$W/dev$it" \
      --jobs "$(j $([ $it = 300 ] && echo 3 || echo 5))" "${COMMON[@]}" "${FT[@]}" \
      >> "$W/dev$it.log" 2>&1
    record
  }
  bg dev
  [ "$SERIAL" = 1 ] || DEV_PIDS+=($!)
done

# a confirmation cell (test split)
conf() {  # name jobs args...: one confirmation cell
  local name=$1 jobs=$2; shift 2
  restore "conf_$name"
  "${RUN[@]}" --seeds "${CONF_SEEDS[@]}" --split test --work-dir "$W/conf_$name" \
    --jobs "$jobs" "${COMMON[@]}" "${FT[@]}" "$@" >> "$W/conf_$name.log" 2>&1
  record
}
# the four confirmation cells: name | parallel trainings (baselines, chosen HiCD; parallel mode
# only) | cell arguments | baseline methods
FC_MD4="--detector fc_siam_diff --settings multi_deg_x4"
CELL_ARGS=(
  "core|3|8|$FC_MD4 --iters 800|teacher_hq teacher_lq lq ft_lq feat_mse cwd"
  "fc_res_blur|2|3|--detector fc_siam_diff --settings resolution_x4 blur --iters 300|lq ft_lq"
  "changeformer|2|2|--detector changeformer --settings multi_deg_x4 --iters 300|teacher_hq lq ft_lq"
  "fc_cf002|2|2|$FC_MD4 --change-fraction 0.02 --iters 300|teacher_hq lq ft_lq"
)
baselines() {  # cell index: the cell's baselines (they do not depend on the pick)
  IFS='|' read -r name jobs _ args methods <<< "${CELL_ARGS[$1]}"
  conf "$name" "$(j "$jobs")" $args --methods $methods
}
chosen() {  # cell index: the chosen HiCD (with its ablations in the core cell)
  IFS='|' read -r name _ jobs args methods <<< "${CELL_ARGS[$1]}"
  local extra=()
  [ "$name" = core ] && extra=("${ABL[@]}")
  conf "$name" "$(j "$jobs")" $args --methods hicd "${extra[@]}" --variants "$W/chosen_variant.py"
}
pick() {
  "$PY" tools/experiments/select_variant.py "$VARIANTS" "$W/chosen_variant.py" \
    "$W/dev300/results.csv" "$W/dev800/results.csv" > "$W/pick.log" 2>&1 || exit 1
  cat "$W/pick.log"
  ABL=(hicd_no_sem_self hicd_no_sem_cross hicd_no_sem_global hicd_no_chg_self hicd_no_chg_global)
  grep -q response_kd "$W/chosen_variant.py" && ABL+=(hicd_no_chg_kd)
}

if [ "$SERIAL" = 1 ]; then
  # 3. the pick, then each cell's baselines and chosen HiCD (the core cell first)
  pick
  for c in 0 1 2 3; do baselines $c; chosen $c; done
  exit 0
fi
# 2a. baselines next to the development
PIDS=()
for c in 0 1 2 3; do baselines $c & PIDS+=($!); done
# 3. the pick (rule fixed in docs/results.md), once the development has finished
wait "${DEV_PIDS[@]}"
pick
# 2b. the chosen HiCD of each cell, in the cell's own work dir, after the cell's baselines
for c in 0 1 2 3; do wait "${PIDS[$c]}"; chosen $c & done
wait
