"""The GPU fast path on CPU: which settings a run resolves, the CUDA-graph step's host logic (with a CPU
stand-in for the graph), Polyak averaging without per-step device syncs. The CUDA runs themselves are in
``make bench-gpu`` (docs/gpu.md); the tests marked ``cuda`` run only where a GPU is present."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.optim.swa_utils import AveragedModel

from lookahead import Lookahead
from lookahead.optim import fused_sync
from lookahead.optim.polyak import PolyakAverage
from lookahead.train import fast_path
from lookahead.train.distributed import Dist
from lookahead.train.fast_path import resolve_fast_path
from lookahead.train.graphs import GRAPH_TOLERANCE, GraphedStep, _copy_into, signature
from lookahead.train.schema import ConfigError, Trainer, validate
from lookahead.train.step import TrainStep
from lookahead.train.trainer import train
from lookahead.workloads.base import StepOutput, Workload
from tests.conftest import CONFIGS, compose_config, tiny_overrides

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a cuda *device object* needs no GPU


def kind(capturable: bool = True, fast_precision: str = "bf16") -> SimpleNamespace:
    """Just the workload attributes resolve_fast_path reads."""
    return SimpleNamespace(name="kind", capturable=capturable, fast_precision=fast_precision)


def trainer_section(**fields) -> Trainer:
    """configs/trainer/default.yaml with ``fields`` changed, validated."""
    return Trainer(
        **{**OmegaConf.to_container(OmegaConf.load(CONFIGS / "trainer" / "default.yaml")), **fields}
    )


def resolve(device=CPU, world=1, capturable=True, optimizer=torch.optim.SGD, **trainer):
    return resolve_fast_path(trainer_section(**trainer), device, world, kind(capturable), optimizer)


def flags(fast) -> tuple:
    return (
        fast.precision,
        fast.channels_last,
        fast.cudnn_benchmark,
        fast.cuda_graphs,
        fast.fused_optimizer,
        fast.sync_kernel,
    )


@pytest.fixture
def all_verified(monkeypatch):
    """The state once `make gpu-check` has shown every path right and fast on a GPU."""
    everything = fast_path.VERIFIED_ON_GPU | {"cuda_graphs", "fused_optimizer", "sync_kernel"}
    monkeypatch.setattr(fast_path, "VERIFIED_ON_GPU", everything)
    # Triton as on a GPU machine: the kernel runs on CUDA tensors only.
    on_cuda = lambda device: None if device.type == "cuda" else "the parameters are on cpu"  # noqa: E731
    monkeypatch.setattr(fused_sync, "unavailable_reason", on_cuda)


def test_auto_turns_on_only_what_has_run_on_a_gpu():
    cpu = resolve(CPU, fast_path="auto")
    assert flags(cpu) == ("fp32", False, False, False, False, False) and cpu.notes == ()
    gpu = resolve(CUDA, fast_path="auto")
    # bf16, channels_last and cudnn.benchmark ran on an H200; CUDA graphs (with the fused step reading
    # a tensor lr, capturable Adam) and the sync kernel never ran on a GPU: opt-in.
    assert {"precision", "channels_last", "cudnn_benchmark"} == fast_path.VERIFIED_ON_GPU
    assert flags(gpu) == ("bf16", True, True, False, False, False) and gpu.notes == ()
    assert gpu.compile is False  # compile is asked for, never implied


def test_auto_follows_the_verified_list(all_verified):
    assert flags(resolve(CUDA, fast_path="auto")) == ("bf16", True, True, True, True, True)
    assert flags(resolve(CUDA, fast_path=False)) == ("fp32", False, False, False, False, False)


def test_the_opt_in_paths_are_on_when_asked_for(monkeypatch):
    graphs = resolve(CUDA, fast_path="auto", cuda_graphs=True)  # the captured step needs the fused step
    assert flags(graphs) == ("bf16", True, True, True, True, False)
    adam = resolve(CUDA, fast_path=False, cuda_graphs=True, optimizer=torch.optim.Adam)
    assert flags(adam) == ("fp32", False, False, True, True, False)
    monkeypatch.setattr(fused_sync, "unavailable_reason", lambda device: None)
    assert resolve(CUDA, fast_path=False, sync_kernel=True).sync_kernel is True


def test_the_sync_kernel_where_it_cannot_run_is_a_config_error_when_asked_for():
    why = "Triton is not installed" if fused_sync.triton is None else "the parameters are on cpu"
    with pytest.raises(ConfigError, match=f"trainer.sync_kernel=true cannot be used: {why}"):
        resolve(CPU, sync_kernel=True)
    assert resolve(CPU, fast_path=True, sync_kernel=False).sync_kernel is False


def test_a_workload_can_keep_fp32_on_the_fast_path():
    lstm = kind(capturable=False, fast_precision="fp32")
    fast = resolve_fast_path(trainer_section(fast_path="auto"), CUDA, 1, lstm, torch.optim.SGD)
    assert flags(fast) == ("fp32", True, True, False, False, False)
    asked = trainer_section(fast_path="auto", precision="bf16")
    assert resolve_fast_path(asked, CUDA, 1, lstm, torch.optim.SGD).precision == "bf16"


def test_each_setting_overrides_the_fast_path(all_verified):
    gpu = resolve(CUDA, fast_path="auto", precision="fp32", channels_last=False, cuda_graphs=False)
    assert flags(gpu) == ("fp32", False, True, False, True, True)
    off = resolve(CUDA, fast_path=False, cuda_graphs=True)  # graphs alone still need the fused step
    assert flags(off) == ("fp32", False, False, True, True, False)
    cpu = resolve(CPU, fast_path=True)  # on a CPU: what applies there, graphs off with the reason
    assert flags(cpu) == ("bf16", True, False, False, False, False)
    assert cpu.notes == (
        "cuda_graphs off: CUDA graphs need a CUDA device",
        "sync_kernel off: the parameters are on cpu",
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"world": 2}, "one process only"),
        ({"capturable": False}, "change shape or carry state"),
        ({"optimizer": torch.optim.RMSprop}, "RMSprop has no fused CUDA step"),
        ({"accumulate_steps": 4}, "trainer.accumulate_steps=1"),
    ],
)
def test_what_blocks_cuda_graphs_is_a_note_under_auto_and_an_error_when_asked_for(
    kwargs, reason, all_verified
):
    trainer = {k: kwargs.pop(k) for k in list(kwargs) if k == "accumulate_steps"}
    auto = resolve(CUDA, fast_path="auto", **kwargs, **trainer)
    assert not auto.cuda_graphs and reason in auto.notes[0]
    with pytest.raises(
        ConfigError, match="trainer.cuda_graphs=true cannot be used: .*" + reason.split("=")[0]
    ):
        resolve(CUDA, fast_path="auto", cuda_graphs=True, **kwargs, **trainer)


def test_a_bad_fast_path_value_is_one_config_error(data_root, tmp_path):
    cfg = compose_config(
        ["experiment=mnist1d_sgd", "trainer.cuda_graphs=maybe", *tiny_overrides(data_root, tmp_path)]
    )
    with pytest.raises(ConfigError, match=r"trainer\.cuda_graphs"):
        train(validate(cfg), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- the graphed step, with a CPU stand-in for torch.cuda.CUDAGraph ----------------------------------------
class EmulatedGraph:
    """Like a capture, ``capture`` leaves the model and optimizer as they were (it runs ``fn`` once to get
    its outputs, then restores every tensor and the RNG); ``replay`` runs ``fn`` again and writes its
    outputs into the tensors ``capture`` returned, as a replay refreshes a graph's static outputs."""

    def __init__(self, step: TrainStep) -> None:
        self.step = step

    def _tensors(self) -> list[torch.Tensor]:
        model, opt = self.step.model, self.step.optimizer
        inner = opt.optimizer if isinstance(opt, Lookahead) else opt
        state = [v for s in inner.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
        return [*model.parameters(), *model.buffers(), *state]

    def capture(self, fn):
        self.fn = fn
        saved = [t.detach().clone() for t in self._tensors()]
        with torch.random.fork_rng():
            self.out = fn()
        for t, s in zip(self._tensors(), saved):
            t.detach().copy_(s)
        return self.out

    def replay(self) -> None:
        _copy_into(self.out.logs, self.fn().logs)


class Toy(Workload):
    """Regression on fixed batches (an epoch's last batch is smaller), with an accuracy-like count."""

    name, capturable = "toy", True

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches = batches

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def train_batches(self, epoch, start=0, rank=0, world=1):
        yield from self.batches[start:]

    def splits(self):
        return []

    def train_step(self, model, batch, carry):
        x, y = batch
        out = model(x)
        loss = nn.functional.mse_loss(out, y)
        return StepOutput(loss, len(y), {"loss": (loss.detach(), len(y)), "big": (out > 0).sum()})

    def eval_logs(self, model, split, rank=0, world=1):
        return {}

    def reduce(self, logs):
        return logs


def make_step(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    # The captured step reads lr from a float32 tensor; fp32 kernels round a Python lr to float32 too.
    inner = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    optimizer = Lookahead(inner, k=3, alpha=0.5)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(inner, milestones=[7, 12], gamma=0.2)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(n, 6, generator=g), torch.randn(n, 2, generator=g)) for n in (8, 8, 8, 8, 5)]
    workload = Toy(batches)
    return TrainStep(workload, model, optimizer, scheduler, Dist(), CPU), workload


def run_epochs(step, workload, epochs: int = 4):
    torch.manual_seed(123)  # dropout
    logs = []
    for epoch in range(epochs):
        for batch in workload.train_batches(epoch):
            result = step([batch], None)
            logs.append({k: float(v[0] if isinstance(v, tuple) else v) for k, v in result.logs[0].items()})
    return logs


def test_the_graphed_step_trains_exactly_like_the_eager_step():
    eager, workload = make_step()
    expected_logs = run_epochs(eager, workload)

    plain, workload = make_step()
    graphed = GraphedStep(plain, warmup=3, graph_factory=lambda: EmulatedGraph(plain))
    logs = run_epochs(graphed, workload)

    # 20 steps: 3 warm-up, then replays, and the 4 smaller last batches run eagerly.
    assert graphed.failure is None
    check = graphed.self_check  # the first replay vs an eager step: the stand-in is exact
    assert check.passed and check.error == 0.0 and check.tolerance == GRAPH_TOLERANCE
    assert (graphed.eager_steps, graphed.replays) == (3 + 4, 20 - 3 - 4)
    assert logs == expected_logs
    for p, q in zip(eager.model.parameters(), plain.model.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(eager.optimizer.state.values(), plain.optimizer.state.values()):
        assert torch.equal(p["slow"], q["slow"])  # Lookahead synced on the same steps
    lr = plain.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(0.05 * 0.2 * 0.2)
    assert graphed.lr[0].item() == torch.tensor(lr).item()  # the schedule moved the captured lr too
    assert isinstance(plain.optimizer.param_groups[0]["lr"], float)  # checkpoints keep a float lr


class LosesTheUpdate(EmulatedGraph):
    """A replay that runs none of the captured work (e.g. a capture that recorded nothing)."""

    def replay(self) -> None:
        pass


class RepeatsTheUpdate(EmulatedGraph):
    """A replay that runs the captured step twice (e.g. an optimizer step recorded twice)."""

    def replay(self) -> None:
        self.fn()
        super().replay()


class WrongLr(EmulatedGraph):
    """A replay whose fused step reads a wrong learning rate tensor (twice the scheduled one)."""

    def replay(self) -> None:
        with torch.no_grad():
            for lr in self.graphed.lr:
                lr.mul_(2)
        super().replay()


class RoundsDifferently(EmulatedGraph):
    """A correct replay whose weights differ from the eager step's in the last bits (as atomics in a
    GPU's backward give): within the tolerance, no false alarm."""

    def replay(self) -> None:
        super().replay()
        with torch.no_grad():
            for p in self.step.model.parameters():
                p.copy_(torch.nextafter(p, torch.full_like(p, float("inf"))))


@pytest.mark.parametrize("wrong", [LosesTheUpdate, RepeatsTheUpdate, WrongLr])
def test_a_wrong_first_replay_is_caught_and_the_run_goes_on_eagerly(wrong):
    eager, workload = make_step()
    expected_logs = run_epochs(eager, workload)

    plain, workload = make_step()
    graphed = GraphedStep(plain, warmup=3)

    def factory():
        graph = wrong(plain)
        graph.graphed = graphed
        return graph

    graphed.graph_factory = factory
    with pytest.warns(RuntimeWarning, match="cuda_graph self-check failed .* goes on with eager steps"):
        logs = run_epochs(graphed, workload)
    check = graphed.self_check
    assert not check.passed and check.error > GRAPH_TOLERANCE
    assert graphed.failure.startswith("the first replay differed from an eager step")
    assert graphed.replays == 0 and graphed.eager_steps == 20 and graphed.graph is None
    # The eager step's result was kept: the run is the eager run, bit for bit.
    assert logs == expected_logs
    for p, q in zip(eager.model.parameters(), plain.model.parameters()):
        assert torch.equal(p, q)


def test_a_first_replay_within_the_tolerance_is_kept():
    plain, workload = make_step()
    graphed = GraphedStep(plain, warmup=3, graph_factory=lambda: RoundsDifferently(plain))
    run_epochs(graphed, workload, epochs=1)
    check = graphed.self_check
    assert check.passed and 0 < check.error < GRAPH_TOLERANCE / 100 and graphed.failure is None
    assert graphed.replays == 1  # 5 steps: 3 warm-up, 1 replay, the smaller last batch eagerly


def test_the_self_check_costs_one_eager_step_once(monkeypatch):
    plain, workload = make_step()
    graphed = GraphedStep(plain, warmup=3, graph_factory=lambda: EmulatedGraph(plain))
    gradients = []
    original = plain.gradients
    monkeypatch.setattr(plain, "gradients", lambda *a: gradients.append(1) or original(*a))
    run_epochs(graphed, workload)
    # 7 eager steps (3 warm-up, 4 last batches), the capture, 13 replays (each runs fn once on the
    # stand-in) and ONE extra eager step: the self-check's.
    assert len(gradients) == 7 + 1 + 13 + 1


def test_a_failed_capture_leaves_the_run_going_eagerly():
    class Refuses:
        def capture(self, fn):
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    eager, workload = make_step()
    expected = run_epochs(eager, workload, epochs=2)
    plain, workload = make_step()
    graphed = GraphedStep(plain, warmup=2, graph_factory=Refuses)
    assert run_epochs(graphed, workload, epochs=2) == expected
    assert graphed.failure == "RuntimeError: operation not permitted when stream is capturing"
    assert graphed.replays == 0 and graphed.eager_steps == 10


def test_signature_tells_replayable_batches_apart():
    x = torch.zeros(4, 3, 8, 8)
    assert signature((x, torch.zeros(4), 0)) == signature((x + 1, torch.ones(4), 0))
    assert signature((x, torch.zeros(4), 0)) != signature((x[:2], torch.zeros(2), 0))  # smaller batch
    assert signature((x, torch.zeros(4), 0)) != signature((x, torch.zeros(4), 1))  # ImageNet's skipped count
    assert signature(x) != signature(x.to(memory_format=torch.channels_last))


def test_the_trainer_with_cuda_graphs_matches_the_eager_trainer(data_root, tmp_path, monkeypatch):
    args = ["experiment=mnist1d_lookahead", "trainer.max_epochs=2", *tiny_overrides(data_root, tmp_path)]
    eager = train(validate(compose_config(args)), tmp_path / "eager").to_dict()

    # On a CPU: lift the CUDA-only blockers, and hand GraphedStep the CPU stand-in.
    monkeypatch.setattr("lookahead.train.fast_path._graph_blockers", lambda *a: [])

    class Emulated(GraphedStep):
        def __init__(self, step: TrainStep) -> None:
            super().__init__(step, graph_factory=lambda: EmulatedGraph(step))

    graphed = train(
        validate(compose_config([*args, "trainer.cuda_graphs=true"])), tmp_path / "graphed", graphed=Emulated
    ).to_dict()
    summary = json.loads((tmp_path / "graphed" / "summary.json").read_text())
    assert summary["fast_path"]["cuda_graphs"] is True
    assert summary["fast_path"]["graph_failure"] is None
    assert summary["fast_path"]["graph_replays"] > 0
    assert summary["fast_path"]["self_checks"] == {
        "cuda_graph": {
            "path": "cuda_graph",
            "passed": True,
            "error": 0.0,
            "tolerance": GRAPH_TOLERANCE,
            "detail": "first replay vs eager step; worst: weights, |replay - eager| / |eager step's change|",
        }
    }
    assert graphed["final"] == eager["final"]
    assert json.loads((tmp_path / "eager" / "summary.json").read_text())["fast_path"]["self_checks"] == {}


def test_a_trainer_run_whose_first_replay_is_wrong_records_why_and_ends_like_the_eager_run(
    data_root, tmp_path, monkeypatch, capsys
):
    args = ["experiment=mnist1d_lookahead", "trainer.max_epochs=2", *tiny_overrides(data_root, tmp_path)]
    eager = train(validate(compose_config(args)), tmp_path / "eager").to_dict()
    monkeypatch.setattr("lookahead.train.fast_path._graph_blockers", lambda *a: [])

    class Wrong(GraphedStep):
        def __init__(self, step: TrainStep) -> None:
            super().__init__(step, graph_factory=lambda: RepeatsTheUpdate(step))

    with pytest.warns(RuntimeWarning, match="cuda_graph self-check failed"):
        graphed = train(
            validate(compose_config([*args, "trainer.cuda_graphs=true"])), tmp_path / "graphed", graphed=Wrong
        )
    summary = json.loads((tmp_path / "graphed" / "summary.json").read_text())["fast_path"]
    assert summary["graph_replays"] == 0
    assert summary["graph_failure"].startswith("the first replay differed from an eager step")
    check = summary["self_checks"]["cuda_graph"]
    assert check["passed"] is False and check["error"] > check["tolerance"] == GRAPH_TOLERANCE
    assert "CUDA graphs off, the run goes on eagerly: the first replay differed" in capsys.readouterr().out
    assert graphed.final == eager["final"]


def test_a_graphed_run_stopped_by_a_signal_resumes_to_the_uninterrupted_result(
    data_root, tmp_path, monkeypatch
):
    # Eager warm-up steps after the resume and replays compute the same numbers: bit for bit.
    args = [
        "experiment=mnist1d_lookahead",
        "trainer.max_epochs=2",
        "trainer.cuda_graphs=true",
        *tiny_overrides(data_root, tmp_path),
    ]
    monkeypatch.setattr("lookahead.train.fast_path._graph_blockers", lambda *a: [])
    fired = []

    class Emulated(GraphedStep):
        def __init__(self, step: TrainStep) -> None:
            super().__init__(step, graph_factory=lambda: EmulatedGraph(step))

        def _replay(self, batch):
            result = super()._replay(batch)
            if self.replays == 2 and not fired:  # SLURM's warning signal, mid-epoch, mid-graph-run
                fired.append(True)
                os.kill(os.getpid(), signal.SIGUSR2)
            return result

    with pytest.raises(SystemExit) as stopped:
        train(validate(compose_config(args)), tmp_path / "split", graphed=Emulated)
    assert stopped.value.code == 128 + signal.SIGUSR2
    interrupted = json.loads((tmp_path / "split" / "summary.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["steps"] > 0

    resumed = train(validate(compose_config(args)), tmp_path / "split", graphed=Emulated)
    whole = train(validate(compose_config(args)), tmp_path / "whole", graphed=Emulated)
    assert resumed.status == whole.status == "completed" and interrupted["steps"] < whole.steps
    assert resumed.final == whole.final
    assert resumed.fast_path["graph_replays"] > 0


def test_fast_path_on_a_cpu_trains_in_bf16_with_channels_last(data_root, tmp_path, capsys):
    args = [
        "experiment=cifar10_lookahead",
        "trainer.max_epochs=2",
        "trainer.fast_path=true",
    ]
    summary = train(
        validate(compose_config([*args, *tiny_overrides(data_root, tmp_path, "cifar10")])), tmp_path / "run"
    )
    assert summary.status == "completed"
    assert summary.fast_path["precision"] == "bf16" and summary.fast_path["channels_last"] is True
    assert summary.fast_path["notes"] == []
    assert "speed settings on cpu: bf16, channels_last\n" in capsys.readouterr().out


def test_channels_last_reaches_the_weights_and_the_slow_copy(data_root, tmp_path):
    from lookahead.train.build import build

    cfg = compose_config(
        [
            "experiment=cifar10_lookahead",
            "trainer.channels_last=true",
            *tiny_overrides(data_root, tmp_path, "cifar10"),
        ]
    )
    setup = build(validate(cfg), CPU)
    conv = next(p for p in setup.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    conv.grad = torch.zeros_like(conv)
    setup.optimizer.step()
    assert setup.optimizer.state[conv]["slow"].stride() == conv.stride()


# -- Polyak averaging -------------------------------------------------------------------------------------
def test_polyak_average_is_averaged_model_bit_for_bit_and_survives_a_reload():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 5))
    ours, reference = PolyakAverage(model), AveragedModel(model, use_buffers=True)
    for _ in range(6):
        model(torch.randn(8, 3, 8, 8))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        ours.update_parameters(model)
        reference.update_parameters(model)
    expected = reference.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in ours.state_dict().items())

    reloaded = PolyakAverage(model)
    reloaded.load_state_dict(expected)
    reloaded.update_parameters(model)
    reference.update_parameters(model)
    assert int(reloaded.n_averaged) == 7
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in reloaded.state_dict().items())


def test_polyak_update_reads_no_device_value(monkeypatch):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = PolyakAverage(model)
    average.update_parameters(model)  # reads the counter once (after construction or a load)

    def forbidden(self, *args):
        raise AssertionError("a device value was read on the host")

    monkeypatch.setattr(torch.Tensor, "__bool__", forbidden)
    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    for _ in range(3):
        average.update_parameters(model)
    monkeypatch.undo()
    assert int(average.n_averaged) == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_capture_of_a_real_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2)).cuda()
    inner = torch.optim.SGD(model.parameters(), lr=0.0625, momentum=0.9, fused=True)
    optimizer = Lookahead(inner, k=3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(inner, milestones=[5], gamma=0.5)
    batches = [(torch.randn(8, 6, device="cuda"), torch.randn(8, 2, device="cuda")) for _ in range(4)]
    step = GraphedStep(TrainStep(Toy(batches), model, optimizer, scheduler, Dist(), CUDA), warmup=2)
    for _ in range(3):
        for batch in batches:
            step([batch], None)
    assert step.failure is None and step.replays == 10
    assert step.self_check.passed, step.self_check


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_trainer_with_every_opt_in_path_passes_its_self_checks(data_root, tmp_path):
    tiny = [o for o in tiny_overrides(data_root, tmp_path) if o != "device=cpu"]
    args = ["experiment=mnist1d_lookahead", "trainer.max_epochs=2", "device=cuda", *tiny]
    opt_in = ["trainer.fast_path=false", "trainer.cuda_graphs=true"]
    if fused_sync.triton is not None:
        opt_in.append("trainer.sync_kernel=true")
    graphed = train(validate(compose_config([*args, *opt_in])), tmp_path / "graphed")
    checks = graphed.fast_path["self_checks"]
    assert checks["cuda_graph"]["passed"], checks
    assert fused_sync.triton is None or checks["sync_kernel"]["passed"], checks
    assert graphed.fast_path["graph_replays"] > 0 and graphed.fast_path["graph_failure"] is None


@pytest.mark.parametrize(("preset", "capturable"), [("cifar10_lookahead", None), ("cifar10_adam", True)])
def test_the_fast_path_builds_the_fused_inner_step_and_adam_capturable(
    data_root, tmp_path, preset, capturable
):
    from lookahead.train.build import build_optimizer

    cfg = compose_config([f"experiment={preset}", *tiny_overrides(data_root, tmp_path, "cifar10")])
    model = nn.Linear(3, 2)
    built = build_optimizer(validate(cfg), model, fused=True, capturable=True)
    inner = built.optimizer if isinstance(built, Lookahead) else built
    assert inner.defaults["fused"] is True and inner.defaults["foreach"] is None
    assert inner.defaults.get("capturable") is capturable  # SGD has no step counter to capture
    plain = build_optimizer(validate(cfg), model)
    plain = plain.optimizer if isinstance(plain, Lookahead) else plain
    assert not plain.defaults.get("fused") and not plain.defaults.get("capturable")


@pytest.mark.slow  # a benchmark: ResNet-18 through every path (over 300 s on a loaded 2-core machine)
def test_bench_gpu_runs_every_cpu_path_and_says_its_figures_are_not_gpu_figures(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallback; on a GPU run make bench-gpu")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_gpu.py"), "--skip", "accuracy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    first, label = out.splitlines()[:2]
    assert first.startswith("bench_gpu.py: ")  # what it is about to do, before torch loads
    assert "NOT GPU figures" in label
    for line in (
        "   fp32 ",
        "   bf16+channels_last ",
        "   fp32 eager ",
        "   fast path ",
        "3. Lookahead sync, ResNet-18:",
    ):
        assert line in out, line
    assert "'precision': 'bf16', 'channels_last': True" in out  # the fast-path run used the fast path
    assert list(tmp_path.iterdir()) == []  # everything it wrote was temporary


# -- make gpu-check without a GPU ---------------------------------------------------------------------------
def gpu_check(out, **env):
    import subprocess
    import sys

    from tests.conftest import ROOT

    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path; on a GPU run make gpu-check")
def test_gpu_check_without_cuda_stops_with_a_clear_error(tmp_path):
    import sys

    done = gpu_check(tmp_path / "gpu")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: no CUDA device visible to {sys.executable};")
    assert "GPU_CHECK_DRY_RUN=1" in done.stderr and done.stdout == ""
    assert not (tmp_path / "gpu").exists()  # nothing written


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU dry run; on a GPU run make gpu-check")
def test_gpu_check_dry_run_on_a_cpu_runs_every_step_and_labels_its_block(tmp_path):
    out = tmp_path / "gpu"
    done = gpu_check(out, GPU_CHECK_DRY_RUN="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.startswith("no CUDA: dry run at toy size on the CPU -- NOT GPU evidence")
    assert {p.name for p in out.iterdir()} == {
        "tests.txt",
        "bench_optimizer.txt",
        "bench_gpu.txt",
        "bench_gpu.json",
        "table.md",
    }
    table = (out / "table.md").read_text()
    assert done.stdout.endswith(table)  # the block is printed last
    lines = table.splitlines()
    assert lines[0] == "--- CPU toy run: NOT GPU evidence, do not paste into docs/gpu.md ---"
    assert lines[1] == "| path | verified on | measured | default |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[3:] if line.startswith("| ")}
    assert "off (opt-in)" in rows["CUDA graphs (+ fused step with tensor lr, capturable Adam)"]
    assert "not run (needs CUDA and Triton)" in rows["Lookahead sync kernel (Triton)"]
    assert "on (auto)" in rows["bf16 + channels_last + cudnn.benchmark"]
    assert " passed" in next(line for line in lines if line.startswith("tests ("))
    assert "resnet18    sgd" in table  # bench-optimizer's row
    figures = json.loads((out / "bench_gpu.json").read_text())
    assert figures["cuda"] is False and set(figures["trainer"]) == {"fp32 eager", "fast path"}
