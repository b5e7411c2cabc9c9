#!/usr/bin/env bash
# Round 3 breadth of issue 11 (docs/results.md §0f), run only after the §0e confirmation has
# passed: ChangeFormer-lite on multi_deg_x4 and FC-Siam-diff on resolution_x4 and blur, 800
# iterations, fresh seeds 25-34, test split, teacher_hq / lq / ft_lq / the round-3 pick
# (ca_sched), one runner call per (detector, seed) so that each finished seed holds every
# method; judged once complete by
#   check_success.py --variant ca_sched --cells changeformer800 fc_res800 fc_blur800 \
#       --seeds 25-34 --min-wins 8 $RECORD/r3_breadth_*/results.csv
#   PYTHONPATH=$PWD PYTHON=python WORK=work_dirs/issue11_r3 bash tools/experiments/issue11_round3_breadth.sh
# The §0e gate waits for all 17 seeds and prints its verdict line only (no interim numbers).
# Rows are resumed from and recorded to $RECORD/r3_breadth_{changeformer,fc}/results.csv
# (rows.sh).
set -uo pipefail
PY=${PYTHON:-python}
W=${WORK:-work_dirs/issue11_r3}
RECORD=${RECORD:-docs/experiments/issue11}
BASE=(--crop 64 --batch-size 8 --teacher-iters 800 --threads 1 --quiet --jobs "${JOBS:-2}"
      --iters 800 --split test --finetune-cfg-options optim_wrapper.optimizer.lr=0.0002)
BREADTH_SEEDS=${BREADTH_SEEDS:-$(seq 25 34)}
mkdir -p "$W"

. "$(dirname "${BASH_SOURCE[0]}")/rows.sh"
cell() { run_cell r3 "$@"; }  # name args...: one runner call, see rows.sh

# §0e is applied once every one of its seeds holds its five rows (counted from the key columns
# alone)
CONF=$RECORD/r3_conf_core/results.csv
CONF_FIRST=8 CONF_LAST=24
if ! awk -F, -v first=$CONF_FIRST -v last=$CONF_LAST \
         'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
          { n[$col["seed"]]++ }
          END { for (s = first; s <= last; s++) if (n[s] < 5) exit 1 }' "$CONF" 2>/dev/null; then
  echo "[breadth] §0e is not complete ($CONF: seeds $CONF_FIRST-$CONF_LAST need five rows" \
       "each); §0f waits" >&2
  exit 1
fi
verdict=$("$PY" tools/experiments/check_success.py --variant ca_sched --cells core \
  --seeds $CONF_FIRST-$CONF_LAST --min-wins 14 "$CONF" | tail -n 1)
if [ "$verdict" != "Verdict: PASS" ]; then
  echo "[breadth] §0e ${verdict:-gave no verdict}: §0f runs only after §0e has passed" >&2
  exit 1
fi
echo "[breadth] §0e $verdict"
"$PY" tools/experiments/select_variant.py configs/_base_/hicd/dev3_variants.py \
  "$W/chosen_variant.py" "$RECORD/r3_dev300/results.csv" "$RECORD/r3_dev800/results.csv" \
  > "$W/pick.txt" || exit 1
grep -qx 'chosen: ca_sched' "$W/pick.txt" || {
  echo "[breadth] the round-3 pick is not ca_sched" >&2; exit 1; }

METHODS=(--methods teacher_hq lq ft_lq hicd --variants "$W/chosen_variant.py")
for s in $BREADTH_SEEDS; do
  cell breadth_changeformer --detector changeformer --settings multi_deg_x4 "${METHODS[@]}" \
    --seeds "$s"
  cell breadth_fc --detector fc_siam_diff --settings resolution_x4 blur "${METHODS[@]}" \
    --seeds "$s"
done
