#!/usr/bin/env bash
# Create .venv-bench: a virtualenv for the reference tools (MLflow) that the benchmarks
# compare against, kept apart from .venv so that MLflow's pins never touch ours; and
# install wrk (the serving benchmarks' load generator) when it is missing.
# Usage: benchmarks/setup_bench_env.sh   (from anywhere; idempotent)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
# The serving benchmarks load the servers with wrk (Debian package wrk).
if ! command -v wrk >/dev/null 2>&1; then
  echo "Installing wrk (Debian package wrk) for the serving benchmarks..."
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq wrk >/dev/null
  command -v wrk >/dev/null 2>&1 || { echo "wrk install failed" >&2; exit 1; }
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV with $PYTHON ..."
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet 'mlflow>=3'
"$VENV/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__, 'ready in $VENV')"
