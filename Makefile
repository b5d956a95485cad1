# Lookahead reproduction suite. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TRAIN := $(PY) experiments/train.py
SEEDS ?= 1,2,3
comma := ,
empty :=
space := $(empty) $(empty)

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
DEMO := results/demo
DEMO_METHODS := mnist1d_sgd,mnist1d_lookahead,mnist1d_adam,mnist1d_lookahead_adam
.PHONY: demo report paper-cifar bench-trainer

demo: $(STAMP)  ## MNIST-1D: SGD and Adam, with and without Lookahead, 3 seeds -> results/demo/ (a few min on CPU)
	$(TRAIN) --multirun experiment=$(DEMO_METHODS) seed=1,2,3 paths.runs=$(DEMO)/runs trainer.progress=lines
	$(PY) scripts/report.py $(DEMO)/runs --out $(DEMO) --plot

report: $(STAMP)  ## table of every run under results/runs (mean ± std over seeds, paper side by side)
	$(PY) scripts/report.py results/runs --out results/report

# One target per CIFAR preset: `make cifar10-lookahead SEEDS=1,2,3`.
CIFAR_TARGETS := $(foreach d,cifar10 cifar100,$(foreach m,sgd adam polyak lookahead lookahead_adam,$(d)-$(m)))
.PHONY: $(CIFAR_TARGETS)
$(CIFAR_TARGETS): $(STAMP)
	$(TRAIN) --multirun experiment=$(subst -,_,$@) seed=$(SEEDS)
cifar10-lookahead: ## CIFAR-10 ResNet-18, Lookahead(SGD), Table 1 settings (also cifar10-sgd/-adam/-polyak, cifar100-*)

bench-trainer: $(STAMP)  ## samples/s: trainer vs minimal loop, tensor data path vs DataLoader+transforms (~1 min)
	$(PY) scripts/bench_trainer.py

paper-cifar: $(STAMP)  ## Table 1: every CIFAR method x 3 seeds as one multirun, then the report
	$(TRAIN) --multirun experiment=$(subst $(space),$(comma),$(subst -,_,$(CIFAR_TARGETS))) seed=$(SEEDS)
	$(PY) scripts/report.py results/runs --out results/report

# ---- tables, theory, figures (issue 4) ----------------------------------------------------------
