#!/usr/bin/env bash
# System packages (Debian): a PostgreSQL server for the tests, Chromium for the web UI's
# browser tests (Playwright drives it; it downloads no browser of its own), Prometheus
# (promtool checks the alert rules forgeline deploy prometheus writes, and a real
# prometheus scrapes a real server in the tests), a C/C++ toolchain with CMake; with --bench,
# also wrk, the serving benchmarks' load generator.
set -euo pipefail
have_postgres() {
  command -v pg_ctl >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}
apt_install() {  # apt_install PACKAGE WHAT-FOR
  echo "Installing $1 (Debian package $1) for $2..."
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "$1" >/dev/null
}
if ! have_postgres; then
  apt_install postgresql "the store tests"
  have_postgres || { echo "PostgreSQL install failed: pg_ctl not found" >&2; exit 1; }
fi
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium "the web UI's browser tests"
  command -v chromium >/dev/null 2>&1 || { echo "Chromium install failed: chromium not found" >&2; exit 1; }
fi
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus "the alert rules' and /metrics' tests (promtool, prometheus)"
  command -v promtool >/dev/null 2>&1 || { echo "Prometheus install failed: promtool not found" >&2; exit 1; }
fi
# A C/C++ toolchain and CMake: `make llm` compiles llama.cpp (the real local LLM's server),
# and compiled tree models (forgeline optimize) are C that gcc builds.
if ! command -v g++ >/dev/null 2>&1; then
  apt_install g++ "compiling llama.cpp and compiled tree models"
fi
if ! command -v cmake >/dev/null 2>&1; then
  apt_install cmake "compiling llama.cpp (the real local LLM of the labelling tests)"
fi
if [ "${1:-}" = "--bench" ] && ! command -v wrk >/dev/null 2>&1; then
  apt_install wrk "the serving benchmarks"
  command -v wrk >/dev/null 2>&1 || { echo "wrk install failed: wrk not found" >&2; exit 1; }
fi
