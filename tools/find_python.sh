# Sourced by the launch scripts: ROOT, the checkout (the folder above tools/),
# and PYTHON, the interpreter: PYTHON if set, else `python` on PATH if it can
# import torch and mmdyt, else the checkout's .venv; otherwise stop, naming
# PYTHON.
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
