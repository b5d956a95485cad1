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

# ---- WMT14 En-De and the synthetic translation task (issue 9) ------------------------------------
WMT_ROOT ?= $(if $(LOOKAHEAD_DATA),$(LOOKAHEAD_DATA),data)/wmt14_en_de
WMT_PRESETS := wmt14_adam,wmt14_lookahead_adam,wmt14_lookahead_adam_nowarmup,wmt14_adafactor
SYNTH := results/synthetic_translation
.PHONY: wmt14-vocab wmt14 wmt14-figure synthetic-translation

wmt14-vocab: $(STAMP)  ## joint 32k SentencePiece vocabulary of data/wmt14_en_de (once; docs/wmt.md has the files)
	$(PY) scripts/translation_data.py vocab --root $(WMT_ROOT) --src en --tgt de --vocab-size 32000

wmt14: $(STAMP)  ## Figure 7b runs: Adam, LA(Adam), LA(Adam) without warmup, Adafactor (GPU; SEEDS=1 for one seed)
	$(TRAIN) --multirun experiment=$(WMT_PRESETS) seed=$(SEEDS)
	$(PY) -m lookahead.analysis.translation_figures results/runs/wmt14_* --out $(FIG)/figure7b
	$(PY) scripts/tables.py results/runs --preset wmt --out results/tables --name wmt

wmt14-figure: $(STAMP)  ## Figure 7b (training loss vs inner steps) from results/runs/wmt14_*
	$(PY) -m lookahead.analysis.translation_figures results/runs/wmt14_* --out $(FIG)/figure7b

synthetic-translation: $(STAMP)  ## synthetic translation, Adam vs LA(Adam), 3 seeds, CPU -> results/synthetic_translation/
	$(TRAIN) --multirun experiment=synth_adam,synth_lookahead_adam seed=1,2,3 paths.runs=$(SYNTH)/runs trainer.progress=lines
	$(PY) scripts/tables.py $(SYNTH)/runs --metric final_test_bleu --scale 1 --baseline adam --out $(SYNTH) --name bleu
	$(PY) scripts/tables.py $(SYNTH)/runs --metric final_valid_perplexity --scale 1 --baseline adam --out $(SYNTH) --name valid_perplexity
	$(PY) -m lookahead.analysis.translation_figures $(SYNTH)/runs --out $(SYNTH)/training_loss --title "Synthetic translation: training loss"
# ---- end of issue 9 ------------------------------------------------------------------------------
