"""CUDA graphs over the training step: forward, backward, clipping and the inner optimizer's fused step
are captured once and replayed for every batch of the same shape.

At the paper's batch sizes a ResNet-18 step on an H100/H200 is bound by kernel launches, not arithmetic;
a replay launches the whole step at once. What stays on the host between replays: copying the batch
into the graph's static input, writing the scheduled learning rates into the device tensors the fused
step reads, Lookahead's count and sync (every k-th step), Polyak averaging, the schedule, and the logs
(the graph's static outputs, summed on the device by the trainer before the next replay).

The first ``warmup`` steps run eagerly on a side stream, as the CUDA graphs documentation prescribes
(cuDNN autotuning, the optimizer's lazily created state, torch.compile's compilation); the next step of
the first batch's shape is captured and replayed. A batch of another shape (an epoch's smaller last
batch) or whose non-tensor parts differ runs eagerly. If the capture fails, the run goes on eagerly and
``failure`` says why (the trainer prints it and records it in the summary).

Self-check: capture has not yet run on a GPU (docs/gpu.md), so the first replay of a run is compared
with an eager step from the same state, batch and RNG state (the eager step runs on the live tensors,
the replay's result is kept in copies). Beyond :data:`GRAPH_TOLERANCE` the run keeps the eager step's
result, warns once and goes on eagerly (``failure`` and ``self_check`` say why); within it, the replay's
result is put back and the run goes on as if nothing had been checked. Cost, once per run: one eager
step, three copies of the weights, buffers and optimizer state, and one read of the difference.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch

from lookahead.optim.lookahead import Lookahead
from lookahead.optim.self_check import SelfCheck
from lookahead.train.step import StepResult, TrainStep
from lookahead.workloads.base import Batch

# Adam(capturable=True) warns when it steps outside a capture: our warm-up and odd-shaped steps do.
_CAPTURABLE_WARNING = "This instance was constructed with capturable=True"
# How far the first replay may be from the eager step: per kind of tensor (weights, buffers, optimizer
# state, logged outputs), the norm of their difference over the norm of the eager step's change (for the
# outputs: of their value). Bit for bit on the CPU stand-in; a correct replay on a GPU differs only by
# the order of atomic adds and an fp32 lr tensor vs a Python float lr (~1e-6 of the update); a stale
# batch, a lost or doubled update or a wrong lr changes the update by its own order of magnitude.
GRAPH_TOLERANCE = 1e-2


class Graph(Protocol):
    def capture(self, fn: Callable[[], Any]) -> Any:
        """Record ``fn``'s device work without running it; return its (static) outputs."""

    def replay(self) -> None:
        """Run the recorded work again on the same memory."""


class CudaGraph:
    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], Any]) -> Any:
        with torch.cuda.graph(self.graph):
            return fn()

    def replay(self) -> None:
        self.graph.replay()


def signature(batch: Any) -> Any:
    """What a batch must share with the captured one to be replayed: tensor shapes, dtypes, strides,
    devices, and the values of everything else."""
    if isinstance(batch, torch.Tensor):
        return ("tensor", tuple(batch.shape), batch.dtype, batch.stride(), batch.device)
    if isinstance(batch, (tuple, list)):
        return (type(batch).__name__, *(signature(b) for b in batch))
    if isinstance(batch, dict):
        return tuple((k, signature(v)) for k, v in sorted(batch.items()))
    return batch


def _copy_into(static: Any, batch: Any) -> None:
    if isinstance(static, torch.Tensor):
        static.copy_(batch, non_blocking=True)
    elif isinstance(static, (tuple, list)):
        for s, b in zip(static, batch):
            _copy_into(s, b)
    elif isinstance(static, dict):
        for key in static:
            _copy_into(static[key], batch[key])


def _clone(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.clone(memory_format=torch.preserve_format)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_clone(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _clone(v) for k, v in batch.items()}
    return batch


class GraphedStep:
    """A :class:`TrainStep` whose device work is captured once and replayed (see the module docstring).

    ``graph_factory`` makes the graph (``CudaGraph``; the tests pass a CPU stand-in).
    """

    def __init__(
        self, step: TrainStep, warmup: int = 3, graph_factory: Callable[[], Graph] | None = None
    ) -> None:
        self.step, self.warmup, self.graph_factory = step, warmup, graph_factory or CudaGraph
        step.autocast_cache = False  # for the warm-up steps too: the capture must see the same ops
        self.optimizer = step.optimizer
        self.inner = self.optimizer.optimizer if isinstance(self.optimizer, Lookahead) else self.optimizer
        self.graph: Graph | None = None
        self.shape: Any = None  # the signature of the batches that are replayed
        self.static_batch: Any = None
        self.static_result: StepResult | None = None
        self.lr: list[torch.Tensor] = []  # what the captured fused step reads as each group's lr
        self.eager_steps = self.replays = 0
        self.failure: str | None = None
        self.self_check: SelfCheck | None = None  # the first replay vs an eager step

    def fast_path_record(self) -> dict[str, Any]:
        return {"graph_replays": self.replays, "graph_failure": self.failure}

    def __call__(self, micro_batches: list[Batch], carry: Any) -> StepResult:
        (batch,) = micro_batches
        if self.shape is None:
            self.shape = signature(batch)
        if self.failure is None and signature(batch) == self.shape:
            if self.graph is None and self.eager_steps >= self.warmup:
                self._capture(batch, carry)
            if self.graph is not None:
                return self._replay(batch) if self.self_check else self._checked_replay(batch, carry)
        return self._eager(micro_batches, carry)

    def _eager(self, micro_batches: list[Batch], carry: Any) -> StepResult:
        self.eager_steps += 1
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
            warming_up = self.graph is None and self.failure is None
            if not warming_up or self.step.device.type != "cuda":
                return self.step(micro_batches, carry)
            side = torch.cuda.Stream()  # warm-up before a capture: on a side stream
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                result = self.step(micro_batches, carry)
            torch.cuda.current_stream().wait_stream(side)
            return result

    def _device_work(self, carry: Any) -> StepResult:
        """What the graph holds: the step's gradient and the inner optimizer's step, reading each
        group's lr from ``self.lr`` (swapped in only for the duration, so that checkpoints, schedules
        and logs keep seeing Python floats)."""
        groups = self.optimizer.param_groups
        floats = [group["lr"] for group in groups]
        for group, lr in zip(groups, self.lr):
            group["lr"] = lr
        try:
            result, lr_scale = self.step.gradients([self.static_batch], carry)
            if lr_scale != 1.0:
                raise RuntimeError("a captured step cannot scale the learning rate (lr_scale != 1)")
            self.inner.step()
        finally:
            for group, lr in zip(groups, floats):
                group["lr"] = lr
        return result

    def _capture(self, batch: Batch, carry: Any) -> None:
        device = self.step.device
        self.static_batch = _clone(batch)
        self.lr = [torch.tensor(float(g["lr"]), device=device) for g in self.optimizer.param_groups]
        try:
            graph = self.graph_factory()
            self.static_result = graph.capture(lambda: self._device_work(carry))
        except Exception as err:  # a kernel or op that cannot be captured: carry on eagerly
            self.failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            self.static_batch = self.static_result = None
            if device.type == "cuda":
                torch.cuda.synchronize()
            return
        self.graph = graph

    def _replay(self, batch: Batch) -> StepResult:
        self._replay_device_work(batch)
        self.replays += 1
        return self._host_work(self.static_result)

    def _replay_device_work(self, batch: Batch) -> None:
        _copy_into(self.static_batch, batch)
        for lr, group in zip(self.lr, self.optimizer.param_groups):
            lr.fill_(group["lr"])
        self.graph.replay()

    def _host_work(self, result: StepResult) -> StepResult:
        """What follows the inner step on the host: Lookahead's count and sync, and the schedule."""
        if self.inner is not self.optimizer:
            self.optimizer.advance()  # Lookahead: count the replayed inner step, sync every k-th
        self.step.scheduler.step()
        return result

    # -- the self-check -----------------------------------------------------------------------------------
    def _state(self) -> dict[str, list[torch.Tensor]]:
        """Every tensor a step changes, by kind (the optimizer's: the inner one's; Lookahead's come later)."""
        model = self.step.model
        optimizer = [v for s in self.inner.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
        return {"weights": list(model.parameters()), "buffers": list(model.buffers()), "optimizer": optimizer}

    def _checked_replay(self, batch: Batch, carry: Any) -> StepResult:
        """The first replay, checked against an eager step from the same state (module docstring)."""
        state = self._state()
        before = {kind: _copies(ts) for kind, ts in state.items()}
        rng = _rng_state(self.step.device)
        self._replay_device_work(batch)
        replayed = {kind: _copies(ts) for kind, ts in state.items()}
        replayed["outputs"] = _copies(_tensors(self.static_result.logs))
        replayed_rng = _rng_state(self.step.device)

        _restore(state, before)
        _set_rng_state(self.step.device, rng)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
            result, lr_scale = self.step.gradients([batch], carry)
            if lr_scale != 1.0:
                raise RuntimeError("a captured step cannot scale the learning rate (lr_scale != 1)")
            self.inner.step()
        eager = {**state, "outputs": _tensors(result.logs)}
        self.self_check = _compare(replayed, eager, before)
        if self.self_check.passed:
            _restore(state, replayed)
            _set_rng_state(self.step.device, replayed_rng)
            self.replays += 1
            return self._host_work(self.static_result)
        self.self_check.warn("eager steps")
        self.failure = f"the first replay differed from an eager step ({self.self_check.detail})"
        self.graph = self.static_batch = self.static_result = None  # its memory goes back
        self.eager_steps += 1
        return self._host_work(result)


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in _tensors(item)]
    if isinstance(tree, dict):
        return [t for item in tree.values() for t in _tensors(item)]
    return []


def _copies(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone(memory_format=torch.preserve_format) for t in tensors]


def _restore(state: dict[str, list[torch.Tensor]], saved: dict[str, list[torch.Tensor]]) -> None:
    with torch.no_grad():
        for kind, tensors in state.items():
            for t, s in zip(tensors, saved[kind]):
                t.copy_(s)


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(device: torch.device, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _norm(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all the tensors together, in fp64, one tensor at a time (no copy of them all)."""
    norms = [t.double().norm() for t in tensors]
    return torch.stack(norms).norm() if norms else torch.zeros((), dtype=torch.float64)


def _compare(
    replayed: dict[str, list[torch.Tensor]],
    eager: dict[str, list[torch.Tensor]],
    before: dict[str, list[torch.Tensor]],
) -> SelfCheck:
    """Per kind: ||replayed - eager|| / ||eager - before|| (outputs: / ||eager||), the worst kind named."""
    errors = {}
    for kind, got in replayed.items():
        want = [t.detach() for t in eager[kind]]
        diff = _norm(g.double() - w.double() for g, w in zip(got, want))
        if kind == "outputs":
            ref = _norm(want)
        else:
            ref = _norm(w.double() - b.double() for w, b in zip(want, before[kind]))
        errors[kind] = diff / ref.clamp_min(torch.finfo(torch.float64).tiny)
    values = torch.stack(list(errors.values())).nan_to_num(nan=float("inf")).tolist()  # one read
    worst_kind, worst = max(zip(errors, values), key=lambda kv: kv[1])
    detail = f"first replay vs eager step; worst: {worst_kind}, |replay - eager| / |eager step's change|"
    return SelfCheck("cuda_graph", worst <= GRAPH_TOLERANCE, worst, GRAPH_TOLERANCE, detail)
