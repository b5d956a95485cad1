"""Translation: parallel-text reader, token batching, label-smoothed loss, decoding, sacreBLEU, workload."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lookahead.data import DataError
from lookahead.data import translation as data
from lookahead.data.synthetic_translation import generate_corpus, lexicon
from lookahead.models.generate import beam_search, greedy
from lookahead.models.transformer import Transformer
from lookahead.train.build import build_workload
from lookahead.train.schema import validate
from lookahead.workloads.translation import (
    SyntheticTranslation,
    Translation,
    bleu,
    label_smoothed_loss,
    write_translations,
)

# A few real WMT-style sentence pairs (newstest-like English/German) in the real file format.
EN_DE = [
    ("The house is small.", "Das Haus ist klein."),
    ("The house is very small.", "Das Haus ist sehr klein."),
    ("The book is on the table.", "Das Buch liegt auf dem Tisch."),
    ("I have seen the man.", "Ich habe den Mann gesehen."),
    ("We are going home today.", "Wir gehen heute nach Hause."),
    ("She reads a new book.", "Sie liest ein neues Buch."),
    ("The weather is good in summer.", "Im Sommer ist das Wetter gut."),
    ("He drinks coffee every morning.", "Er trinkt jeden Morgen Kaffee."),
]


def write_split(
    root: Path, split: str, pairs: list[tuple[str, str]], src: str = "en", tgt: str = "de"
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{split}.{src}").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (root / f"{split}.{tgt}").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")


@pytest.fixture(scope="module")
def wmt_root(tmp_path_factory) -> Path:
    """A tiny WMT14 En-De folder: the real file names and format, plus its (small) joint vocabulary."""
    root = tmp_path_factory.mktemp("data") / "wmt14_en_de"
    write_split(root, "train", EN_DE * 8)
    write_split(root, "valid", EN_DE[:4])
    write_split(root, "test", EN_DE[4:])
    data.train_vocab(root, "en", "de", vocab_size=120)
    return root


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "synthetic_translation"
    SyntheticTranslation(root, num_train=600, num_valid=40, num_test=40, vocab_size=300, max_tokens=512)
    return root


def synth(root: Path, **kwargs) -> SyntheticTranslation:
    args = {
        "num_train": 600,
        "num_valid": 40,
        "num_test": 40,
        "vocab_size": 300,
        "max_tokens": 512,
        "seed": 1,
    }
    args["decode_extra_len"] = 5  # an untrained model rarely emits EOS: keep its hypotheses short
    return SyntheticTranslation(root, **{**args, **kwargs})


def tiny_model(vocab_size: int, seed: int = 0, **kwargs) -> Transformer:
    torch.manual_seed(seed)
    args = dict(d_model=32, heads=4, ffn_dim=64, encoder_layers=2, decoder_layers=2, dropout=0.0)
    return Transformer(vocab_size, **{**args, **kwargs})


# -- reading and bad input ---------------------------------------------------------------------------
def test_read_parallel_reads_aligned_sentences(wmt_root):
    src, tgt = data.read_parallel(wmt_root, "valid", "en", "de")
    assert src == [s for s, _ in EN_DE[:4]] and tgt == [t for _, t in EN_DE[:4]]


def test_missing_file_is_one_clear_error(tmp_path):
    write_split(tmp_path, "train", EN_DE)
    (tmp_path / "train.de").unlink()
    with pytest.raises(DataError, match=r"train\.de not found: see docs/wmt\.md"):
        data.read_parallel(tmp_path, "train", "en", "de", hint="see docs/wmt.md")


def test_misaligned_files_are_an_error(tmp_path):
    write_split(tmp_path, "train", EN_DE)
    (tmp_path / "train.de").write_text("".join(t + "\n" for _, t in EN_DE[:-1]), encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.en has 8 lines but .*train\.de has 7.*aligned"):
        data.read_parallel(tmp_path, "train", "en", "de")


def test_empty_line_is_an_error_naming_file_and_line(tmp_path):
    write_split(tmp_path, "valid", EN_DE)
    lines = (tmp_path / "valid.en").read_text().splitlines()
    lines[2] = "   "
    (tmp_path / "valid.en").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"valid\.en:3: empty line"):
        data.read_parallel(tmp_path, "valid", "en", "de")


def test_workload_without_data_names_the_file_and_the_docs(tmp_path):
    with pytest.raises(DataError, match=r"train\.en not found: see docs/wmt\.md"):
        Translation(tmp_path)


def test_workload_without_vocabulary_names_the_command(tmp_path):
    for split in data.SPLITS:
        write_split(tmp_path, split, EN_DE)
    with pytest.raises(DataError, match=r"spm32000\.model not found.*scripts/translation_data\.py vocab"):
        Translation(tmp_path)


def test_vocabulary_round_trips_and_keeps_special_ids(wmt_root):
    sp = data.load_vocab(wmt_root, 120)
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2, 3)
    for en, de in EN_DE:
        assert sp.decode(sp.encode(en)) == en and sp.decode(sp.encode(de)) == de


def test_encoded_splits_are_cached_and_invalidated_when_the_text_changes(tmp_path, wmt_root):
    root = tmp_path / "wmt"
    root.mkdir()
    for f in wmt_root.glob("*.*"):
        if f.is_file():
            (root / f.name).write_bytes(f.read_bytes())
    sp = data.load_vocab(root, 120)
    first = data.encode_split(root, "valid", "en", "de", sp)
    assert len(list((root / "cache").glob("valid.*.pt"))) == 1
    again = data.encode_split(root, "valid", "en", "de", sp)
    assert np.array_equal(first.src.tokens, again.src.tokens)
    write_split(root, "valid", EN_DE[:2])
    assert len(data.encode_split(root, "valid", "en", "de", sp)) == 2


def test_length_filter_drops_long_pairs():
    corpus = data.ParallelCorpus(
        data.Side.from_ids([[5] * 3, [5] * 9, [5]]), data.Side.from_ids([[6] * 4, [6], [6] * 2])
    )
    kept = data.length_filter(corpus, max_len=5)  # with EOS: src 4/10/2, tgt 5/2/3
    assert [list(kept.src[i]) for i in range(len(kept))] == [[5] * 3, [5]]
    assert [list(kept.tgt[i]) for i in range(len(kept))] == [[6] * 4, [6] * 2]
    ratio = data.length_filter(corpus, max_len=100, max_ratio=2.0)
    assert len(ratio) == 2  # 10 vs 2 tokens goes


# -- token batching ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lengths() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    src = rng.integers(1, 40, 500)
    return src, np.clip(src + rng.integers(-5, 6, 500), 1, None)


def test_no_batch_exceeds_max_tokens_and_each_pair_appears_once_per_epoch(lengths):
    src, tgt = lengths
    batcher = data.TokenBatcher(src, tgt, max_tokens=200, seed=3)
    for epoch in range(3):
        batches = list(batcher.epoch(epoch))
        assert len(batches) == len(batcher)
        for b in batches:
            assert len(b) * max(src[b].max(), tgt[b].max()) <= 200
        assert sorted(np.concatenate(batches).tolist()) == list(range(500))


def test_batches_are_bucketed_by_length_and_shuffled_per_epoch(lengths):
    src, tgt = lengths
    batcher = data.TokenBatcher(src, tgt, max_tokens=200, seed=3)
    first, second = list(batcher.epoch(0)), list(batcher.epoch(1))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))
    # Bucketing: target lengths inside a batch span a narrow range (sorted, then cut).
    spans = [tgt[b].max() - tgt[b].min() for b in first]
    assert np.mean(spans) <= 2
    # The same (seed, epoch) gives the same batches; another seed another order.
    assert all(np.array_equal(a, b) for a, b in zip(first, data.TokenBatcher(src, tgt, 200, seed=3).epoch(0)))
    assert not all(
        np.array_equal(a, b) for a, b in zip(first, data.TokenBatcher(src, tgt, 200, seed=4).epoch(0))
    )


def test_resume_mid_epoch_gives_the_remaining_batches(lengths):
    batcher = data.TokenBatcher(*lengths, max_tokens=200, seed=3)
    full = list(batcher.epoch(2))
    resumed = list(data.TokenBatcher(*lengths, max_tokens=200, seed=3).epoch(2, start=5))
    assert len(resumed) == len(full) - 5
    assert all(np.array_equal(a, b) for a, b in zip(full[5:], resumed))


def test_rank_shards_partition_each_global_batch():
    batch = np.arange(11)
    parts = [data.shard(batch, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), batch) and [len(p) for p in parts] == [3, 4, 4]
    with pytest.raises(DataError, match="cannot be split over 4 ranks"):
        data.shard(np.arange(3), 0, 4)


def test_a_pair_longer_than_max_tokens_is_an_error():
    with pytest.raises(DataError, match="does not fit max_tokens=10"):
        data.TokenBatcher(np.array([3, 12]), np.array([3, 4]), max_tokens=10)


def test_collate_adds_bos_eos_and_padding():
    corpus = data.ParallelCorpus(data.Side.from_ids([[7, 8], [9]]), data.Side.from_ids([[10], [11, 12, 13]]))
    batch = data.collate(corpus, np.array([0, 1]))
    eos, bos = data.EOS, data.BOS
    assert batch.src.tolist() == [[7, 8, eos], [9, eos, 0]]
    assert batch.tgt_in.tolist() == [[bos, 10, 0, 0], [bos, 11, 12, 13]]
    assert batch.tgt_out.tolist() == [[10, eos, 0, 0], [11, 12, 13, eos]]
    assert batch.num_tokens == 6


# -- loss --------------------------------------------------------------------------------------------
def test_label_smoothed_loss_matches_a_hand_computation():
    logits = torch.tensor([[[2.0, 0.5, -1.0, 0.0], [0.0, 1.0, 3.0, -2.0], [1.0, 1.0, 1.0, 1.0]]])
    target = torch.tensor([[1, 2, 0]])  # the last position is padding (id 0): ignored
    eps, vocab = 0.1, 4
    expected_loss = expected_nll = 0.0
    for position, t in ((0, 1), (1, 2)):
        row = logits[0, position].tolist()
        log_z = math.log(sum(math.exp(v) for v in row))
        logp = [v - log_z for v in row]
        expected_nll += -logp[t]
        expected_loss += (1 - eps) * -logp[t] + eps / vocab * sum(-lp for lp in logp)
    loss, nll = label_smoothed_loss(logits, target, eps)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-6)
    assert nll.item() == pytest.approx(expected_nll, rel=1e-6)


# -- model and decoding ------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [True, False])
def test_incremental_decoding_matches_the_full_forward(norm_first):
    model = tiny_model(50, norm_first=norm_first).eval()
    src = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]])
    tgt = torch.tensor([[2, 10, 11, 12], [2, 13, 14, 15]])
    full = model(src, tgt)
    memory, mask = model.encode(src)
    cache = model.new_cache()
    steps = [model.decode(tgt[:, t : t + 1], memory, mask, cache, start=t) for t in range(tgt.size(1))]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_a_sentences_logits():
    model = tiny_model(50).eval()
    alone = model(torch.tensor([[5, 6, 3]]), torch.tensor([[2, 9]]))
    padded = model(torch.tensor([[5, 6, 3, 0, 0], [5, 6, 7, 8, 3]]), torch.tensor([[2, 9, 0], [2, 9, 9]]))
    torch.testing.assert_close(padded[:1, :2], alone, rtol=1e-5, atol=1e-5)


def test_shared_embeddings_tie_input_and_output():
    model = tiny_model(50)
    assert sum(p.data_ptr() == model.embed.weight.data_ptr() for p in model.parameters()) == 1
    logits = model(torch.tensor([[5, 3]]), torch.tensor([[2]]))
    logits[0, 0, 7].backward()
    assert model.embed.weight.grad[7].abs().sum() > 0  # the output projection is the embedding


def test_beam_search_with_beam_1_equals_greedy():
    model = tiny_model(40, seed=1).eval()
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0], [11, 12, 13, 3, 0]])
    expected = greedy(model, src, data.BOS, data.EOS, max_len=12)
    assert beam_search(model, src, data.BOS, data.EOS, max_len=12, beam=1, alpha=0.6) == expected


def test_beam_search_finds_a_hypothesis_at_least_as_probable_as_greedy():
    model = tiny_model(30, seed=2).eval()
    src = torch.tensor([[5, 6, 7, 3], [8, 9, 10, 3]])

    def log_prob(i: int, hyp: list[int]) -> float:
        tgt = torch.tensor([[data.BOS, *hyp]])
        logp = torch.log_softmax(model(src[i : i + 1], tgt)[0].float(), -1)
        return sum(logp[t, tok].item() for t, tok in enumerate([*hyp, data.EOS]))

    greedy_hyps = greedy(model, src, data.BOS, data.EOS, max_len=8)
    beam_hyps = beam_search(model, src, data.BOS, data.EOS, max_len=8, beam=4, alpha=0.0)
    for i in range(2):
        if len(greedy_hyps[i]) < 8 and len(beam_hyps[i]) < 8:  # both ended with EOS: comparable scores
            assert log_prob(i, beam_hyps[i]) >= log_prob(i, greedy_hyps[i]) - 1e-5


# -- sacreBLEU ---------------------------------------------------------------------------------------
def test_our_bleu_equals_the_sacrebleu_command_line_on_the_written_files(tmp_path):
    refs = [de for _, de in EN_DE]
    hyps = [
        "Das Haus ist klein.",
        "Das Haus ist klein.",
        "Das Buch ist auf dem Tisch.",
        "Ich sah den Mann.",
        "Wir gehen heute heim.",
        "Sie liest ein Buch.",
        "Das Wetter ist gut im Sommer.",
        "Er trinkt Kaffee.",
    ]
    result = bleu(hyps, refs)
    write_translations(tmp_path, "test", "de", hyps, refs, result)
    record = json.loads((tmp_path / "bleu.json").read_text())
    assert record["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "sacrebleu",
            "test.ref.de",
            "-i",
            "test.hyp.de",
            "-m",
            "bleu",
            "-b",
            "-w",
            "6",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(cli.stdout.strip()) == pytest.approx(record["score"], abs=1e-6)
    assert (
        0 < record["score"] < 100
        and record["command"] == "sacrebleu test.ref.de -i test.hyp.de -m bleu -tok 13a"
    )


# -- synthetic task ----------------------------------------------------------------------------------
def test_synthetic_task_is_deterministic_and_reorders(tmp_path):
    a, b = (
        generate_corpus(tmp_path / "a", 50, 5, 5, seed=7),
        generate_corpus(tmp_path / "b", 50, 5, 5, seed=7),
    )
    for name in ("train.src", "train.tgt", "test.tgt"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (generate_corpus(tmp_path / "c", 50, 5, 5, seed=8) / "train.src").read_bytes() != (
        a / "train.src"
    ).read_bytes()
    lex = lexicon(7)
    to_target = {s: t for pairs in lex.values() for s, t in pairs}
    verbs = {s for s, _ in lex["verb"]}
    for src, tgt in zip(
        (a / "train.src").read_text().splitlines(), (a / "train.tgt").read_text().splitlines()
    ):
        words = src.split()
        verb = next(w for w in words if w in verbs)
        assert tgt.split()[-1] == to_target[verb]  # SVO -> SOV: the verb moves to the end
        assert sorted(w for w in tgt.split() if w not in ("ga", "o")) == sorted(to_target[w] for w in words)


# -- the workload ------------------------------------------------------------------------------------
def test_workload_trains_evaluates_and_scores_bleu(synth_root, tmp_path):
    workload = synth(synth_root)
    assert (
        workload.unit == "tokens" and workload.target == "valid_perplexity" and not workload.higher_is_better
    )
    assert [(s.name, s.size) for s in workload.splits()] == [("valid", 40), ("test", 40)]
    model = tiny_model(**workload.model_kwargs())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for epoch in range(2):
        for batch in workload.train_batches(epoch):
            out = workload.train_step(model, batch, None)
            assert out.sample_size == batch.num_tokens and out.logs["tokens"] == out.sample_size
            assert out.loss.item() == pytest.approx(out.logs["loss"].item() / out.sample_size)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            losses.append(out.loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0
    model.eval()
    with torch.no_grad():
        metrics = workload.reduce(workload.eval_logs(model, "valid"))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["nll_loss"]))
    assert metrics["loss"] > metrics["nll_loss"] > 0  # smoothing adds to the NLL
    # Two ranks' eval logs add up to the single-process ones.
    with torch.no_grad():
        halves = [workload.eval_logs(model, "valid", rank=r, world=2) for r in range(2)]
    whole = workload.eval_logs(model, "valid")
    assert sum(h["tokens"] for h in halves) == whole["tokens"]
    assert sum(h["nll_loss"] for h in halves) == pytest.approx(whole["nll_loss"], rel=1e-5)
    final = workload.final_evaluation(model, tmp_path)
    record = json.loads((tmp_path / "translations" / "bleu.json").read_text())
    assert final == {"test_bleu": record["score"]} and record["sentences"] == 40
    assert workload.summary_extra == {"test_bleu_signature": record["signature"]}
    hyps = (tmp_path / "translations" / "test.hyp.tgt").read_text().splitlines()
    refs = (tmp_path / "translations" / "test.ref.tgt").read_text().splitlines()
    assert len(hyps) == 40 and refs == (workload.root / "test.tgt").read_text().splitlines()


def test_workload_batches_shard_over_ranks_and_resume(synth_root):
    workload = synth(synth_root)
    whole = list(workload.train_batches(1))
    assert len(whole) == workload.steps_per_epoch()
    ranks = [list(workload.train_batches(1, rank=r, world=2)) for r in range(2)]
    for b, batch in enumerate(whole):
        assert np.array_equal(np.concatenate([ranks[0][b].indices, ranks[1][b].indices]), batch.indices)
    resumed = list(workload.train_batches(1, start=2))
    assert all(
        torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out) for a, b in zip(whole[2:], resumed)
    )


def test_greedy_option_and_bad_options(synth_root, tmp_path):
    workload = synth(synth_root, beam=1, bleu_max_sentences=5)
    model = tiny_model(**workload.model_kwargs())
    assert set(workload.final_evaluation(model, None)) == {"test_bleu"}
    with pytest.raises(ValueError, match=r"dataset\.beam must be >= 1"):
        synth(synth_root, beam=0)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        synth(synth_root, label_smoothing=1.0)


# -- scripts and figure ------------------------------------------------------------------------------
def test_join_script_concatenates_pairs_and_drops_empty_sides(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from translation_data import main

    (tmp_path / "a.en").write_text("one\n\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\ndrei\n")
    (tmp_path / "b.en").write_text("four\n")
    (tmp_path / "b.de").write_text("vier\n")
    pairs = [f"{tmp_path}/a.en:{tmp_path}/a.de", f"{tmp_path}/b.en:{tmp_path}/b.de"]
    assert main(["join", "--root", str(tmp_path / "out"), "--pairs", *pairs]) == 0
    assert data.read_parallel(tmp_path / "out", "train", "en", "de") == (
        ["one", "three", "four"],
        ["eins", "drei", "vier"],
    )
    (tmp_path / "b.de").write_text("vier\nfuenf\n")
    assert main(["join", "--root", str(tmp_path / "out"), "--pairs", *pairs]) == 1


def test_figure_7b_plots_mean_and_std_over_seeds(tmp_path):
    import pandas as pd

    from lookahead.analysis.translation_figures import training_loss_figure

    rows = [
        {"experiment": e, "seed": s, "step": step, "train_loss": 5.0 / step + s * 0.01}
        for e in ("wmt14_adam", "wmt14_lookahead_adam_nowarmup")
        for s in (1, 2)
        for step in (100, 200, 300)
    ]
    written = training_loss_figure(pd.DataFrame(rows), tmp_path / "figure7b")
    assert written == [tmp_path / "figure7b.png"] and written[0].stat().st_size > 10_000
    from lookahead.analysis.translation_figures import regular_records

    runs = pd.DataFrame({"run_dir": ["a"] * 5, "step": [25, 49, 50, 75, 98], "train_loss": [5, 4, 9, 3, 2]})
    assert regular_records(runs)["step"].tolist() == [25, 49, 75, 98]  # 50 averaged a single step
    with pytest.raises(ValueError, match="no 'train_loss' against 'step'"):
        training_loss_figure(pd.DataFrame(), tmp_path / "empty")


# -- presets -----------------------------------------------------------------------------------------
WMT_PRESETS = ["wmt14_adam", "wmt14_lookahead_adam", "wmt14_lookahead_adam_nowarmup", "wmt14_adafactor"]


def compose(overrides: list[str]):
    from tests.conftest import compose_config

    return compose_config(overrides)


def test_wmt14_presets_carry_the_papers_settings():
    adam = compose(["experiment=wmt14_adam"])
    assert (
        adam.dataset.name == "wmt14" and adam.experiment_name == "wmt14_adam" and not adam.lookahead.enabled
    )
    assert list(adam.optimizer.betas) == [0.9, 0.997] and adam.optimizer.eps == 1e-9
    assert adam.schedule.name == "warmup" and adam.schedule.warmup_steps == 8000
    assert adam.optimizer.lr == pytest.approx(2.0 * 512**-0.5 * 8000**-0.5, rel=1e-3)
    assert (adam.model.encoder_layers, adam.model.d_model, adam.model.ffn_dim, adam.model.heads) == (
        6,
        512,
        2048,
        8,
    )
    assert adam.model.dropout == 0.1 and adam.dataset.label_smoothing == 0.1
    assert (adam.dataset.beam, adam.dataset.length_penalty) == (4, 0.6)
    vaswani = compose(["experiment=wmt14_adam", "wmt14_recipe=vaswani"])
    assert list(vaswani.optimizer.betas) == [0.9, 0.98] and vaswani.schedule.warmup_steps == 4000
    assert vaswani.optimizer.lr == pytest.approx(512**-0.5 * 4000**-0.5, rel=1e-3)
    la = compose(["experiment=wmt14_lookahead_adam"])
    assert la.experiment_name == "wmt14_lookahead_adam" and (la.lookahead.k, la.lookahead.alpha) == (5, 0.5)
    assert la.schedule.warmup_steps == 8000 and list(la.optimizer.betas) == [0.9, 0.997]
    nowarm = compose(["experiment=wmt14_lookahead_adam_nowarmup"])
    assert nowarm.schedule.name == "constant" and "warmup_steps" not in nowarm.schedule
    assert nowarm.lookahead.enabled and nowarm.optimizer.lr == adam.optimizer.lr
    assert nowarm.experiment_name == "wmt14_lookahead_adam_nowarmup"
    ada = compose(["experiment=wmt14_adafactor"])
    assert ada.optimizer._target_ == "torch.optim.Adafactor" and ada.optimizer.lr == 0.01
    assert not ada.lookahead.enabled and ada.schedule.name == "constant"


@pytest.mark.parametrize("preset", [*WMT_PRESETS, "synth_adam", "synth_lookahead_adam"])
def test_presets_build_their_workload_model_and_optimizer_and_step(preset, wmt_root, synth_root):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lookahead import Lookahead

    data_dir = wmt_root.parent if preset.startswith("wmt14") else synth_root.parent
    overrides = [f"experiment={preset}", f"paths.data={data_dir}"]
    if preset.startswith("wmt14"):  # the fixture's vocabulary, a narrow model: seconds on CPU
        overrides += ["dataset.vocab_size=120", "model.d_model=32", "model.ffn_dim=64", "model.heads=4"]
        overrides += ["model.encoder_layers=2", "model.decoder_layers=2", "model.attn_dropout=0.0"]
    else:
        overrides += [
            "dataset.num_train=600",
            "dataset.num_valid=40",
            "dataset.num_test=40",
            "dataset.vocab_size=300",
        ]
    cfg = compose(overrides)
    OmegaConf.to_yaml(cfg, resolve=True)  # every interpolation resolves
    workload = build_workload(validate(cfg), "cpu")
    assert isinstance(workload, Translation) and workload.name == preset.split("_")[0]
    model = instantiate(cfg.model, **workload.model_kwargs())
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    if cfg.lookahead.enabled:
        optimizer = Lookahead(optimizer, k=cfg.lookahead.k, alpha=cfg.lookahead.alpha)
    before = [p.detach().clone() for p in model.parameters()]
    out = workload.train_step(model, next(workload.train_batches(0)), None)
    out.loss.backward()
    optimizer.step()
    assert torch.isfinite(out.loss) and any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# -- end to end through the trainer ------------------------------------------------------------------
def cli_overrides(preset: str, data_dir: Path, runs: Path) -> list[str]:
    """Overrides that make a translation preset a seconds-long CPU run on the fixture data."""
    common = [f"paths.data={data_dir}", f"paths.runs={runs}", "trainer.progress=lines", "device=cpu"]
    common += ["dataset.decode_extra_len=5"]
    if preset.startswith("wmt14"):
        return [
            *common,
            "dataset.vocab_size=120",
            "dataset.max_tokens=128",
            "model.d_model=32",
            "model.ffn_dim=64",
            "model.heads=4",
            "model.encoder_layers=1",
            "model.decoder_layers=1",
            "model.attn_dropout=0.0",
        ]
    return [
        *common,
        "dataset.num_train=600",
        "dataset.num_valid=40",
        "dataset.num_test=40",
        "dataset.vocab_size=300",
        "dataset.max_tokens=512",
    ]


@pytest.mark.parametrize("preset", [*WMT_PRESETS, "synth_adam", "synth_lookahead_adam"])
def test_presets_train_end_to_end_with_bleu(preset, wmt_root, synth_root, tmp_path):
    from lookahead.train.trainer import train

    data_dir = wmt_root.parent if preset.startswith("wmt14") else synth_root.parent
    tiny = cli_overrides(preset, data_dir, tmp_path)
    # 6 steps: the config check wants Lookahead (k = 5) to sync at least once.
    steps = ["trainer.max_epochs=1", "trainer.limit_train_batches=6", "trainer.eval_every_steps=3"]
    cfg = compose([f"experiment={preset}", *tiny, *steps])
    summary = train(validate(cfg), tmp_path / "run")
    assert summary.status == "completed" and summary.steps == 6
    assert math.isfinite(summary.final["valid_perplexity"]) and 0.0 <= summary.final["test_bleu"] <= 100.0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6] and all(math.isfinite(r["train_loss"]) for r in records)
    bleu_record = json.loads((tmp_path / "run" / "translations" / "bleu.json").read_text())
    assert bleu_record["score"] == summary.final["test_bleu"] and "tok:13a" in bleu_record["signature"]


@pytest.mark.slow  # three CLI runs: 15-45 s on the shared 2-core machine
def test_resume_after_sigkill_ends_with_the_metrics_of_an_uninterrupted_run(synth_root, tmp_path):
    import os
    import signal

    from tests.conftest import ROOT, run_cli, wait_for

    args = ["experiment=synth_lookahead_adam", "trainer.max_epochs=1", "trainer.checkpoint_every_steps=3"]

    def overrides(runs: Path) -> list[str]:
        return [*cli_overrides("synth_lookahead_adam", synth_root.parent, runs), "trainer.eval_every_steps=5"]

    reference = run_cli([*args, *overrides(tmp_path / "ref")], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    (expected,) = [json.loads(p.read_text()) for p in (tmp_path / "ref").rglob("summary.json")]
    command = [sys.executable, str(ROOT / "experiments" / "train.py"), *args, *overrides(tmp_path / "killed")]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for((tmp_path / "killed"), "checkpoints/last.pt", proc), (
        "the run ended before writing checkpoints/last.pt"
    )
    os.kill(proc.pid, signal.SIGKILL)  # mid-epoch, maybe mid-write
    proc.wait()
    (summary_path,) = (tmp_path / "killed").rglob("summary.json")
    assert json.loads(summary_path.read_text())["status"] == "running"
    resumed = run_cli([*args, *overrides(tmp_path / "killed")], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(summary_path.read_text())
    assert final["status"] == "completed" and final["steps"] == expected["steps"]
    assert final["final"] == expected["final"]  # exactly, BLEU included
    hyps = summary_path.parent / "translations" / "test.hyp.tgt"
    assert hyps.read_text() == next((tmp_path / "ref").rglob("test.hyp.tgt")).read_text()
