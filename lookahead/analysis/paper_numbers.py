"""Numbers the paper reports (../shared/paper.md), in one place. [check] marks unconfirmed values."""

from __future__ import annotations

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
