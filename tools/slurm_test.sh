#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#        tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=${@:5}
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
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$ROOT/tools/test.py" ${CONFIG} ${CHECKPOINT} --launcher="slurm" ${PY_ARGS}
