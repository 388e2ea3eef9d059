#!/usr/bin/env bash
# Create .venv-bench: a virtualenv for the reference tools (MLflow) that the benchmarks
# compare against, kept apart from .venv so that MLflow's pins never touch ours; and
# install wrk (the serving benchmarks' load generator) when it is missing.
# Usage: benchmarks/setup_bench_env.sh   (from anywhere; idempotent)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
bash "$ROOT/scripts/install-sysdeps.sh" --bench  # wrk, for the serving benchmarks
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV with $PYTHON ..."
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet 'mlflow>=3'
"$VENV/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__, 'ready in $VENV')"
