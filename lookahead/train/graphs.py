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
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Protocol

import torch

from lookahead.optim.lookahead import Lookahead
from lookahead.train.step import StepResult, TrainStep
from lookahead.workloads.base import Batch

# Adam(capturable=True) warns when it steps outside a capture: our warm-up and odd-shaped steps do.
_CAPTURABLE_WARNING = "This instance was constructed with capturable=True"


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

    def __call__(self, micro_batches: list[Batch], carry: Any) -> StepResult:
        (batch,) = micro_batches
        if self.shape is None:
            self.shape = signature(batch)
        if self.failure is None and signature(batch) == self.shape:
            if self.graph is None and self.eager_steps >= self.warmup:
                self._capture(batch, carry)
            if self.graph is not None:
                return self._replay(batch)
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
        _copy_into(self.static_batch, batch)
        for lr, group in zip(self.lr, self.optimizer.param_groups):
            lr.fill_(group["lr"])
        self.graph.replay()
        self.replays += 1
        if self.inner is not self.optimizer:
            self.optimizer.advance()  # Lookahead: count the replayed inner step, sync every k-th
        self.step.scheduler.step()
        return self.static_result
