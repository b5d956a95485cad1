"""Numbers the paper reports, in one place (sources and [check] flags: docs/paper.md). [check] marks values
that could not be confirmed against the paper itself."""

from __future__ import annotations

# The paper's method labels (lookahead.cli.method_name), in the order its tables list them (Lookahead
# around Adam last); its wrappers, named alone when they wrap SGD; SGD, its baseline throughout.
PAPER_METHODS = ("sgd", "polyak", "adam", "lookahead", "lookahead_adam")
PAPER_WRAPPERS = {"lookahead": "sgd", "polyak": "sgd"}
PAPER_BASELINE = "sgd"

# Figure 7b's four curves, in the paper's legend order (other experiments follow in name order); the
# synthetic task's presets are labelled alike.
FIGURE7B_LABELS = {
    "wmt14_adam": "Adam (warmup)",
    "wmt14_adafactor": "Adafactor",
    "wmt14_lookahead_adam": "Lookahead(Adam) (warmup)",
    "wmt14_lookahead_adam_nowarmup": "Lookahead(Adam) (no warmup)",
    "synth_adam": "Adam (warmup)",
    "synth_lookahead_adam": "Lookahead(Adam) (warmup)",
}

# Table 1: final CIFAR test accuracy (%), mean and std over seeds (means confirmed; stds [check]).
TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("cifar10", "sgd"): (95.23, 0.19),
    ("cifar10", "polyak"): (95.26, 0.04),
    ("cifar10", "adam"): (94.84, 0.16),
    ("cifar10", "lookahead"): (95.27, 0.06),
    ("cifar100", "sgd"): (78.24, 0.18),
    ("cifar100", "polyak"): (77.99, 0.42),
    ("cifar100", "adam"): (76.88, 0.39),
    ("cifar100", "lookahead"): (78.34, 0.05),
}

# Table 2: ImageNet ResNet-50 single-crop accuracy (%) on the ILSVRC2012 validation set at epochs 50 and
# 60 (read twice from the paper's table, in agreement); the schedule behind them is [check].
TABLE2: dict[tuple[str, str, str], float] = {
    ("lookahead", "top1", "50"): 75.13,
    ("sgd", "top1", "50"): 74.43,
    ("lookahead", "top5", "50"): 92.22,
    ("sgd", "top5", "50"): 92.15,
    ("lookahead", "top1", "60"): 75.49,
    ("sgd", "top1", "60"): 75.15,
    ("lookahead", "top5", "60"): 92.53,
    ("sgd", "top5", "60"): 92.56,
}

# Penn Treebank: the paper's best row is about val 60.28 / test 57.72 perplexity [check]; which method
# it belongs to is not confirmed, so no value is attached to a method here.
PTB_BEST_ROW = {"val_perplexity": 60.28, "test_perplexity": 57.72}

# Not the paper: a published reproduction of its PTB runs (AWD-LSTM, 350 epochs instead of 750), the
# validation / test perplexity it measured per method (../shared/paper.md) [check]. Shown as a reference
# in docs/ptb.md, never in a table's "paper" column.
PTB_REPRODUCTION: dict[str, tuple[float, float]] = {
    "sgd": (66.85, 63.96),
    "lookahead": (67.87, 64.59),
    "adam": (63.88, 61.14),
    "lookahead_adam": (63.87, 60.63),
}

# The classic small LSTM (2 x 200, no dropout; Zaremba, Sutskever, Vinyals 2014, arXiv:1409.2329,
# Table 1 "non-regularized LSTM"): validation / test perplexity [check].
ZAREMBA_SMALL = {"valid_perplexity": 120.7, "test_perplexity": 114.5}


def paper_preset(name: str) -> dict:
    """What a paper table compares: the metric column, the cells expected, the paper's values."""
    cifar_methods = ["sgd", "polyak", "adam", "lookahead"]
    presets = {
        "table1": {
            "metric": "final_test_accuracy",
            "scale": 100.0,
            "by": ["dataset", "method"],
            "expected": [(d, m) for d in ("cifar10", "cifar100") for m in cifar_methods],
            "paper": dict(TABLE1),
            "caption": "Table 1: CIFAR final test accuracy (%), ResNet-18",
        },
        # The ImageNet workload logs valid_top1 / valid_top5 (the public validation set, see
        # docs/imagenet.md); "@50" reads the record of epoch 50 from each run's metrics.jsonl.
        **{
            f"table2_{top}_epoch{epoch}": {
                "metric": f"valid_{top}@{epoch}",
                "scale": 100.0,
                "by": ["dataset", "method"],
                "expected": [("imagenet", m) for m in ("sgd", "lookahead")],
                "paper": {
                    ("imagenet", m): (TABLE2[(m, top, str(epoch))], None) for m in ("sgd", "lookahead")
                },
                "caption": f"Table 2: ImageNet ResNet-50 {top} validation accuracy (%) at epoch {epoch}",
            }
            for epoch in (50, 60)
            for top in ("top1", "top5")
        },
        "table2": {  # the four above as one table, one row per (metric, method)
            "parts": [f"table2_{top}_epoch{epoch}" for epoch in (50, 60) for top in ("top1", "top5")],
            "caption": "Table 2: ImageNet ResNet-50 top-1/top-5 validation accuracy (%) at epochs 50 and 60",
        },
        "ptb": {
            "metric": "final_test_perplexity",
            "scale": 1.0,
            "by": ["dataset", "method"],
            "expected": [("ptb", m) for m in ("sgd", "lookahead", "adam", "lookahead_adam", "polyak")],
            "paper": {},
            "higher_better": False,
            "baseline": "inner",
            "caption": "Penn Treebank test perplexity (AWD-LSTM; lower is better)",
        },
        "ptb_cpu": {
            "metric": "final_test_perplexity",
            "scale": 1.0,
            "by": ["dataset", "method"],
            "expected": [("ptb_small", m) for m in ("sgd", "lookahead", "adam", "lookahead_adam")],
            "paper": {},
            "higher_better": False,
            "baseline": "inner",
            "caption": "Penn Treebank CPU tier: test perplexity, small LSTM (lower is better)",
        },
        **{
            f"ptb_classic_{split}": {  # the calibration run: a published number, not the paper's
                "metric": f"final_{split}_perplexity",
                "scale": 1.0,
                "by": ["dataset", "method"],
                "expected": [("ptb_classic", "sgd")],
                "paper": {("ptb_classic", "sgd"): (ZAREMBA_SMALL[f"{split}_perplexity"], None)},
                "higher_better": False,
                "baseline": "none",
                "caption": f"Zaremba et al.'s small LSTM: {split} perplexity (their Table 1 in the paper column)",
            }
            for split in ("valid", "test")
        },
        "ptb_classic": {
            "parts": ["ptb_classic_valid", "ptb_classic_test"],
            "caption": "Zaremba et al.'s small LSTM (13 epochs): valid and test perplexity beside their Table 1",
        },
        "wmt": {  # by experiment: LA(Adam) with and without warmup share the method label
            "metric": "final_test_bleu",
            "scale": 1.0,
            "by": ["experiment"],
            "expected": [
                (f"wmt14_{m}",) for m in ("adam", "lookahead_adam", "lookahead_adam_nowarmup", "adafactor")
            ],
            "paper": {},
            "caption": "WMT14 En-De newstest2014 sacreBLEU (Transformer-base)",
        },
    }
    if name not in presets:
        raise ValueError(f"unknown table preset {name!r}; choose one of {', '.join(presets)}")
    return presets[name]
