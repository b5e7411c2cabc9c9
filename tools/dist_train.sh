#!/usr/bin/env bash
# Distributed training through torchrun, with mmseg's variables for several machines:
#   tools/dist_train.sh CONFIG NUM_PROCS_PER_NODE [train.py args...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8   # node 0
# Python and the launch: tools/dist_run.sh.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCS_PER_NODE [train.py args...]" >&2
    exit 2
fi
CONFIG=$1
NPROCS=$2
shift 2
exec "$(dirname "$0")/dist_run.sh" train.py "$NPROCS" "$CONFIG" "$@"
