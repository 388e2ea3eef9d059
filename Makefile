# `make test` and `make demo` work on a fresh machine: each creates .venv, installs the
# package with what it needs (system packages included), then runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install sysdeps test lint demo bench screenshots clean llm

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

sysdeps:
	@bash scripts/install-sysdeps.sh

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports

test: install sysdeps lint llm
	$(BIN)/python -m pytest

# The real local LLM (tests/labeling/test_llm_real.py, the labelling benchmarks):
# llama-cpp-python compiles llama.cpp (10-20 min on 2 cores), so its wheel is built once
# into $(WHEELS) (cache that folder in CI) and installed from there afterwards.
# GGML_NATIVE=OFF: a wheel for any x86-64 with AVX2, not only the machine that built it.
WHEELS ?= $(HOME)/.cache/forgeline/wheels
LLAMA_CPP_VERSION := 0.3.36
llm: sysdeps $(VENV)/.llm

$(VENV)/.llm: $(VENV)/.installed
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "Building llama-cpp-python $(LLAMA_CPP_VERSION) once into $(WHEELS) (10-20 min)..."; \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel --quiet --no-deps \
	    llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(WHEELS); }
	$(BIN)/python -m pip install --quiet --find-links $(WHEELS) -e '.[llm]'
	touch $@

# The web UI's pages as the README shows them (docs/ui/*.png), taken by its browser tests.
screenshots: install sysdeps
	FORGELINE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/server/ui

# The whole story (see `forgeline demo --help`); options in DEMO_ARGS, e.g. DEMO_ARGS="--home /tmp/d".
demo: install
	$(BIN)/forgeline demo $(DEMO_ARGS)

# Reference tools (MLflow) go in their own virtualenv so their pins never touch ours.
bench: install sysdeps
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .ruff_cache build src/*.egg-info
