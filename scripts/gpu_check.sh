#!/usr/bin/env bash
# Every GPU check in one go (docs/gpu.md), each output also written to OUT_DIR (default results/local/gpu):
#   1. the CUDA-only tests and the self-check tests: a real capture whose first replay is checked against
#      an eager step, the sync kernel checked against the foreach sync, a trainer run with every opt-in
#      path recording its self-checks in summary.json;
#   2. bench-optimizer (the sync's overhead ratios) and 3. bench-gpu (trainer speed per path, the sync
#      kernel vs foreach, accuracy), whose JSON is kept;
#   4. a block of rows for docs/gpu.md's table, printed last (also in OUT_DIR/table.md).
# About 12 minutes on one H100/H200. Without CUDA it stops with an error, unless GPU_CHECK_DRY_RUN=1: then
# every step runs at toy size on the CPU (a check of this script, NOT GPU evidence; ~3 min).
# Usage: scripts/gpu_check.sh [OUT_DIR]; PYTHON=... picks the interpreter (default: python).
set -uo pipefail
out=${1:-results/local/gpu}
py=${PYTHON:-python}
dry=${GPU_CHECK_DRY_RUN:-0}
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    if [ "$dry" != 1 ]; then
        echo "error: no CUDA device visible to $py; make gpu-check needs a GPU (an H100 or H200)." >&2
        echo "       GPU_CHECK_DRY_RUN=1 runs every step at toy size on the CPU: a check of the script, not GPU evidence." >&2
        exit 2
    fi
    echo "no CUDA: dry run at toy size on the CPU -- NOT GPU evidence"
    bench_optimizer_args=(--models resnet18 --inners sgd --blocks 2 --no-fused-step)
    bench_gpu_args=(--skip bare,accuracy)
else
    dry=0
    bench_optimizer_args=()
    bench_gpu_args=()
fi
mkdir -p "$out"
status=0
# -k: the tests that skip without CUDA, and the self-check tests (CPU stand-ins: they run everywhere).
"$py" -m pytest -q -rs -p no:cacheprovider tests/test_fast_path.py tests/test_lookahead.py \
    -k "(cuda or gpu or self_check or wrong) and not bench and not gpu_check" 2>&1 | tee "$out/tests.txt" || status=1
"$py" scripts/bench_optimizer.py ${bench_optimizer_args[@]+"${bench_optimizer_args[@]}"} 2>&1 | tee "$out/bench_optimizer.txt" || status=1
"$py" scripts/bench_gpu.py --json "$out/bench_gpu.json" ${bench_gpu_args[@]+"${bench_gpu_args[@]}"} 2>&1 \
    | tee "$out/bench_gpu.txt" || status=1
{
    sed -n '/^--- /,$p' "$out/bench_gpu.txt"
    echo "tests (CUDA-only and self-checks): $(tail -n 1 "$out/tests.txt")"
    echo "bench-optimizer ($(grep -v -m 1 '^bench_optimizer.py: ' "$out/bench_optimizer.txt")):"  # not its first line, which says what it does
    sed -n '/^model /,$p' "$out/bench_optimizer.txt"
    echo "outputs: $out (exit status $status)"
} > "$out/table.md"
echo
cat "$out/table.md"
exit $status
