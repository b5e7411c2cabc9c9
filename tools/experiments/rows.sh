# Shared by the issue-11 experiment scripts (source it): a cell's results.csv in the work dir
# and its committed copy (the record), so that a run on a fresh machine resumes from the
# committed rows and a stale work dir never replaces more recorded rows by fewer.
# run_cell reads the caller's PY (python), W (work root), RECORD (record root) and the array
# BASE (runner arguments every cell shares).

restore_rows() {  # work_csv record_csv: start from the recorded rows when the work dir has none
  if [ ! -f "$1" ] && [ -f "$2" ]; then
    mkdir -p "$(dirname "$1")" && cp "$2" "$1" && echo "[rows] resuming from $2"
  fi
}

record_rows() {  # work_csv record_csv: copy the rows back; status 1 when not recorded
  if [ -f "$2" ] && [ "$(wc -l < "$2")" -gt "$(wc -l < "$1")" ]; then
    echo "[rows] NOT recorded: $2 has more rows than $1 (stale work dir?)" >&2
    return 1
  fi
  mkdir -p "$(dirname "$2")" && cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
}

run_cell() {  # prefix name args...: one runner call in $W/<name>, resumed from and recorded to $RECORD/<prefix>_<name>
  local record=$RECORD/$1_$2/results.csv name=$2; shift 2
  mkdir -p "$W/$name"
  restore_rows "$W/$name/results.csv" "$record"
  "$PY" tools/run_experiments.py "${BASE[@]}" --work-dir "$W/$name" "$@" >> "$W/$name.log" 2>&1
  record_rows "$W/$name/results.csv" "$record"
}
