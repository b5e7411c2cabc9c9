#!/usr/bin/env bash
# Distributed testing through torchrun, with mmseg's variables for several machines:
#   tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS_PER_NODE [test.py args...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_test.sh CONFIG CKPT 8   # node 0
# Python and the launch: tools/dist_run.sh.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NUM_PROCS_PER_NODE [test.py args...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROCS=$3
shift 3
exec "$(dirname "$0")/dist_run.sh" test.py "$NPROCS" "$CONFIG" "$CHECKPOINT" "$@"
