#!/usr/bin/env bash
# Every GPU check in one go (docs/gpu.md): the CUDA-only tests, bench-optimizer and bench-gpu, each
# output also written to OUT_DIR (default results/local/gpu). About 10 minutes on one H100/H200.
# Usage: scripts/gpu_check.sh [OUT_DIR]; PYTHON=... picks the interpreter (default: python).
set -uo pipefail
out=${1:-results/local/gpu}
py=${PYTHON:-python}
mkdir -p "$out"
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA device visible to $py; these checks need a GPU" >&2
    exit 2
fi
status=0
"$py" -m pytest -q -rs -p no:cacheprovider tests/test_fast_path.py tests/test_lookahead.py -k "cuda or gpu" \
    2>&1 | tee "$out/tests.txt" || status=1
"$py" scripts/bench_optimizer.py 2>&1 | tee "$out/bench_optimizer.txt" || status=1
"$py" scripts/bench_gpu.py 2>&1 | tee "$out/bench_gpu.txt" || status=1
echo "outputs in $out"
exit $status
