#!/usr/bin/env bash
# System packages the tests need: a PostgreSQL server (Debian's postgresql package).
set -euo pipefail
have_postgres() {
  command -v pg_ctl >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}
if have_postgres; then
  exit 0
fi
echo "Installing PostgreSQL (Debian package postgresql) for the store tests..."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql >/dev/null
have_postgres || { echo "PostgreSQL install failed: pg_ctl not found" >&2; exit 1; }
