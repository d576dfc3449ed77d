#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT.
# The launcher runs as `python -m torch.distributed.run` with the interpreter
# PYTHON, else `python` on PATH if it can import torch and mmdyt, else the
# checkout's .venv (torchrun need not be on PATH).

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
# The interpreter: PYTHON, else `python` on PATH if it can import torch and
# mmdyt, else the checkout's .venv; otherwise stop, naming PYTHON.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$PYTHON" ]; then
    if PYTHONPATH="$ROOT:$PYTHONPATH" python -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('torch') and u.find_spec('mmdyt')))" >/dev/null 2>&1; then
        PYTHON=python
    elif [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        echo "$(basename "$0"): no Python with torch and mmdyt: \`python\` on PATH ($(command -v python || echo 'not found')) cannot import them and $ROOT/.venv does not exist. Set PYTHON to the interpreter of the environment where mmdyt is installed, e.g. PYTHON=/path/to/venv/bin/python $(basename "$0") ..." >&2
        exit 1
    fi
fi

PYTHONPATH="$ROOT":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/train.py" \
    $CONFIG \
    --launcher pytorch "${@:3}"
