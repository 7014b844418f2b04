# The commands people and CI share. `make serve` and `make test` install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# This machine's CPU build; on a GPU host install the CUDA build of torch first
# (pip keeps any torch>=2.6 that is already there).
TORCH_SPEC ?= torch==2.13.0

.PHONY: install serve test lint bench bench-gpu

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

serve: install
	$(BIN)/reelserve serve

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/tiny_e2e.py

# Full-size models with random weights on one 80 GB GPU (one family per 10 minutes); see README.
bench-gpu: install
	$(BIN)/python benchmarks/gpu_generate.py
