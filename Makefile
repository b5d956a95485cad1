# Lookahead reproduction suite. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TRAIN := $(PY) experiments/train.py
SEEDS ?= 1,2,3

.DEFAULT_GOAL := help
.PHONY: help venv test test-all lint

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies

test: $(STAMP)  ## run the test suite (fast tests; CPU only; < 10 min)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow" -n 2 --timeout 600

test-all: $(STAMP)  ## run every test, the slow ones too
	$(PY) -m pytest -n 2

lint: $(STAMP)  ## ruff check + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# ---- optimizer (issue 2) ------------------------------------------------------------------------
.PHONY: bench-optimizer
bench-optimizer: $(STAMP)  ## step-time ratio Lookahead/inner and extra memory (ResNet-18, Transformer; ~2 min)
	$(PY) scripts/bench_optimizer.py

# ---- suite: training, datasets, report (issue 3) ------------------------------------------------

# ---- tables, theory, figures (issue 4) ----------------------------------------------------------
