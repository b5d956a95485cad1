"""Figure 1: test accuracy on the plane through three fast-weight snapshots, with the fast path (every
inner step) and the slow path (every sync) projected onto it; one panel per seed (surface_seeds), on one
colour scale, and the slow-minus-fast accuracy gap as mean ± std over the seeds.

    python experiments/surface.py [experiment=mnist1d_lookahead window=40 grid=21 surface_seeds=[1,2,3]]
"""

from __future__ import annotations

from lookahead.progress import announce

announce(
    __name__,
    "Figure 1: test accuracy on the plane of three fast-weight snapshots (MNIST-1D, per seed)",
)

import json
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, open_dict

from lookahead.analysis.inner_loop import accuracy_surface, plane, project, record_inner_loop
from lookahead.analysis.plotting import METHOD_COLORS, figure, save
from lookahead.cli import register_resolvers, user_errors_exit
from lookahead.train.schema import Config, training_part, validate
from lookahead.train.signals import stop_cleanly

register_resolvers()


def seed_surface(cfg: DictConfig, config: Config) -> dict:
    """One seed (``config``, validated; ``cfg``: the study's settings): the plane through three
    fast-weight snapshots, the accuracy on it, both paths on it."""
    record, _, evaluate = record_inner_loop(config, cfg.warmup_epochs, cfg.window, keep_path=True)
    fast = record.fast_path
    # three fast-weight snapshots spread over the window span the plane
    origin, a, b = fast[0], fast[len(fast) // 2], fast[-1]
    u, v = plane(origin, a, b)
    fast_xy, slow_xy = project(fast, origin, u, v), project(record.slow_path, origin, u, v)
    points = np.concatenate([fast_xy, slow_xy])
    lo, hi = points.min(0), points.max(0)
    pad = cfg.margin * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], cfg.grid)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], cfg.grid)
    return {
        "xs": xs,
        "ys": ys,
        "surface": accuracy_surface(evaluate, origin, u, v, xs, ys),
        "fast_xy": fast_xy,
        "slow_xy": slow_xy,
        "record": record,
    }


@hydra.main(version_base="1.3", config_path="../configs", config_name="inner_loop")
@user_errors_exit
@stop_cleanly("nothing saved (surface.{png,pdf,json} are written at the end)")
def main(cfg: DictConfig) -> None:
    configs = []  # every seed's training config validated before any trains
    for seed in cfg.surface_seeds:
        with open_dict(cfg):
            cfg.seed = seed
        configs.append(validate(training_part(cfg)))
    results = [seed_surface(cfg, config) for config in configs]
    fig, axes = figure(len(results), width=4.6, height=4.4)
    vmin = min(float(r["surface"].min()) for r in results)
    vmax = max(float(r["surface"].max()) for r in results)
    levels = np.linspace(100 * vmin, 100 * vmax, 21)  # one colour scale for every seed
    for index, (ax, seed, r) in enumerate(zip(axes[0], cfg.surface_seeds, results)):
        contour = ax.contourf(r["xs"], r["ys"], 100 * r["surface"], levels=levels, cmap="viridis")
        ax.plot(
            r["fast_xy"][:, 0], r["fast_xy"][:, 1], ".-", color="white", ms=3, lw=0.8, label="fast weights"
        )
        ax.plot(
            r["slow_xy"][:, 0],
            r["slow_xy"][:, 1],
            "o-",
            color=METHOD_COLORS["lookahead"],
            ms=5,
            label="slow weights",
        )
        ax.set(
            title=f"seed {seed}",
            xlabel="direction 1 (weight-space distance)",
            ylabel="direction 2" if index == 0 else "",
        )
        ax.grid(False)
    axes[0][0].legend(loc="upper right", fontsize=8)
    fig.colorbar(contour, ax=list(axes[0]), label="test accuracy (%)", pad=0.01, format="%.0f")
    fig.suptitle(
        f"{cfg.dataset.name}: test accuracy on the plane of three fast-weight snapshots "
        f"(k {cfg.lookahead.k}, alpha {cfg.lookahead.alpha}, lr {cfg.optimizer.lr})"
    )
    out = Path(hydra.utils.to_absolute_path(cfg.out))
    written = save(fig, out / "surface", formats=("png", "pdf"), tight_layout=False)
    # over seeds: how far the slow weights sit above the fast weights' mean accuracy over the window
    gaps = [100 * (np.mean(r["record"].slow_accuracy) - np.mean(r["record"].fast_accuracy)) for r in results]
    summary = {
        "seeds": list(cfg.surface_seeds),
        "per_seed": [
            {
                "seed": seed,
                "fast_accuracy_mean": float(np.mean(r["record"].fast_accuracy)),
                "slow_accuracy_mean": float(np.mean(r["record"].slow_accuracy)),
                "surface_max": float(r["surface"].max()),
                "surface_min": float(r["surface"].min()),
            }
            for seed, r in zip(cfg.surface_seeds, results)
        ],
        "slow_minus_fast_points_mean": float(np.mean(gaps)),
        "slow_minus_fast_points_std": float(np.std(gaps, ddof=1)) if len(gaps) > 1 else None,
    }
    (out / "surface.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {', '.join(map(str, written))}; {json.dumps(summary)}")


if __name__ == "__main__":
    main()
