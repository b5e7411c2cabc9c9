#!/usr/bin/env bash
# The torchrun launch shared by dist_train.sh and dist_test.sh:
#   tools/dist_run.sh TOOL.py NUM_PROCS_PER_NODE [tool args...]
# mmseg's variables for several machines: NNODES, NODE_RANK, MASTER_ADDR, PORT.
# Python: $PYTHON if set, else the project's .venv/bin/python if present, else `python`.
# Without a GPU the processes communicate over gloo on the CPU (see hicd_mm.utils.setup_env).
set -euo pipefail
TOOL=$1
NPROCS=$2
shift 2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
export PYTHONPATH="$ROOT:${PYTHONPATH:-}"
exec "$PYTHON" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROCS" "$ROOT/tools/$TOOL" "$@" --launcher pytorch
