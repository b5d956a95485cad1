#!/usr/bin/env bash
# make check-install: the package as a user installs it. Builds the wheel, installs it into a fresh venv
# that holds torch alone and trains a tiny model with Lookahead; then into a second fresh venv with
# [all] (at requirements.txt's pins) and runs the MNIST-1D demo's trainer for a few steps.
#
# torch is not downloaded again: on x86_64 PyPI's build is ~5.5 GB with its CUDA libraries. Each fresh
# venv sees the pinned torch already in $VENV (torch and the packages torch itself requires, nothing
# else, linked into one folder on its path), so pip counts it as installed; everything else is
# installed by pip from the index (its cache when warm).
set -euo pipefail
unset PYTHONPATH  # the installed package, not this checkout's lookahead/
VENV=${VENV:-.venv}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

mkdir "$WORK/src"  # build from a copy of the tracked files: nothing is written into the checkout
git ls-files -z | tar --null -cf - -T - | tar -xf - -C "$WORK/src"
"$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
wheel=$(ls "$WORK"/dist/lookahead_suite-*.whl)

# torch and its own requirements, from $VENV, linked into one folder
"$VENV/bin/python" - "$WORK/torch-site" <<'PY'
import importlib.metadata as md, pathlib, sys
from packaging.requirements import Requirement
site, todo, seen = pathlib.Path(sys.argv[1]), [("torch", "")], set()
site.mkdir()
while todo:  # (distribution, extra) pairs: torch needs cuda-toolkit[cudart,...]
    name, extra = todo.pop()
    if (name.lower(), extra) in seen:
        continue
    seen.add((name.lower(), extra))
    dist = md.distribution(name)
    for req in map(Requirement, dist.requires or []):
        if req.marker is None or req.marker.evaluate({"extra": extra}):
            todo += [(req.name, e) for e in ("", *req.extras)]
    root = pathlib.Path(dist.locate_file(""))
    for top in {pathlib.PurePath(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
        if (root / top).exists() and not (site / top).exists():
            (site / top).symlink_to(root / top)
PY
site_packages() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

echo "check-install: 1/2 a fresh venv with torch alone"
"$VENV/bin/python" -m venv --without-pip "$WORK/torch-only"
echo "$WORK/torch-site" > "$(site_packages "$WORK/torch-only")/torch.pth"
"$VENV/bin/python" -m pip --python "$WORK/torch-only/bin/python" install -q --no-index "$wheel"
(cd "$WORK" && "$WORK/torch-only/bin/python" - <<'PY'
import importlib.util, torch
from lookahead import Lookahead
for absent in ("hydra", "pydantic", "pandas", "numpy"):
    assert importlib.util.find_spec(absent) is None, f"{absent} is installed: not a torch-only venv"
torch.manual_seed(0)
x = torch.randn(64, 4); y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
model = torch.nn.Linear(4, 1)
opt = Lookahead(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), k=5, alpha=0.5)
losses = []
for _ in range(20):
    opt.zero_grad(); loss = (model(x).squeeze(1) - y).pow(2).mean(); loss.backward(); opt.step()
    losses.append(loss.item())
assert losses[-1] < losses[0] / 10, losses
print(f"  Lookahead(SGD), 20 steps: loss {losses[0]:.3f} -> {losses[-1]:.4f}")
PY
)

echo "check-install: 2/2 a fresh venv with [all]"
"$VENV/bin/python" -m venv --without-pip "$WORK/all"
echo "$WORK/torch-site" > "$(site_packages "$WORK/all")/torch.pth"
"$VENV/bin/python" -m pip --python "$WORK/all/bin/python" install -q -c requirements.txt "$wheel[all]"
(cd "$WORK" && "$WORK/all/bin/python" -c 'import lookahead; assert "site-packages" in lookahead.__file__')
"$WORK/all/bin/python" experiments/train.py experiment=mnist1d_lookahead trainer.max_epochs=1 \
    trainer.limit_train_batches=5 trainer.progress=lines device=cpu "paths.runs=$WORK/runs" \
    "paths.data=$WORK/data"
"$WORK/all/bin/python" - "$WORK/runs" <<'PY'
import json, pathlib, sys
(summary,) = pathlib.Path(sys.argv[1]).rglob("summary.json")
assert json.loads(summary.read_text())["status"] == "completed", summary
PY
echo "check-install: passed in $((SECONDS - start)) s"
