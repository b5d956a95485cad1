"""Fast vs slow weights within the inner loop (the paper's Figure 7 at CPU scale): test accuracy of the
fast weights after every inner step and of the slow weights at every sync, mean ± std over seeds.

    python experiments/fast_slow.py [experiment=mnist1d_lookahead seeds=[1,2,3,4,5] window=40]
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "fast vs slow weights in the inner loop (MNIST-1D, one training per seed)")

import json
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, open_dict

from lookahead.analysis.inner_loop import record_inner_loop
from lookahead.analysis.plotting import METHOD_COLORS, figure, mean_std_band, save
from lookahead.cli import register_resolvers, user_errors_exit
from lookahead.train.schema import training_part, validate
from lookahead.train.signals import stop_cleanly

register_resolvers()


@hydra.main(version_base="1.3", config_path="../configs", config_name="inner_loop")
@user_errors_exit
@stop_cleanly("nothing saved (fast_slow.{png,pdf,json} are written at the end)")
def main(cfg: DictConfig) -> None:
    configs = []  # every seed's training config validated before any trains
    for seed in cfg.seeds:
        with open_dict(cfg):
            cfg.seed = seed
        configs.append(validate(training_part(cfg)))
    records = [record_inner_loop(config, cfg.warmup_epochs, cfg.window)[0] for config in configs]
    steps = np.array(records[0].steps) - records[0].steps[0] + 1
    syncs = np.array(records[0].sync_steps) - records[0].steps[0] + 1
    fast = np.array([r.fast_accuracy for r in records])
    slow = np.array([r.slow_accuracy for r in records])
    fig, axes = figure(1, width=7, height=3.6)
    ax = axes[0][0]
    mean_std_band(
        ax, steps, fast.mean(0), fast.std(0), "fast weights (every inner step)", METHOD_COLORS["sgd"]
    )
    ax.errorbar(
        syncs,
        slow.mean(0),
        yerr=slow.std(0),
        fmt="o",
        color=METHOD_COLORS["lookahead"],
        ms=4,
        capsize=2,
        label="slow weights (at each sync)",
    )
    k, alpha = cfg.lookahead.k, cfg.lookahead.alpha
    ax.set(
        title=f"{cfg.dataset.name}: fast vs slow weights, k {k}, alpha {alpha}, lr {cfg.optimizer.lr} "
        f"(mean ± std, {len(records)} seeds)",
        xlabel=f"inner step (after {cfg.warmup_epochs} epochs)",
        ylabel="test accuracy",
    )
    ax.legend()
    out = Path(hydra.utils.to_absolute_path(cfg.out))
    written = save(fig, out / "fast_slow", formats=("png", "pdf"))
    # at each sync: slow accuracy vs the fast accuracy just before the sync (the inner loop's end)
    before = fast[:, np.searchsorted(steps, syncs) - 1]
    summary = {
        "seeds": list(cfg.seeds),
        "mean_slow_minus_fast_at_sync": float((slow - before).mean()),
        "fast_accuracy_mean": float(fast.mean()),
        "slow_accuracy_mean": float(slow.mean()),
    }
    (out / "fast_slow.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {', '.join(map(str, written))}; {json.dumps(summary)}")


if __name__ == "__main__":
    main()
