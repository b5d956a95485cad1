"""Figure 1: test accuracy on the plane through three fast-weight snapshots, with the fast path (every
inner step) and the slow path (every sync) projected onto it.

    python experiments/surface.py [experiment=mnist1d_lookahead window=40 grid=21]
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from lookahead.analysis.inner_loop import accuracy_surface, plane, project, record_inner_loop
from lookahead.analysis.plotting import METHOD_COLORS, figure, save
from lookahead.cli import register_resolvers, user_errors_exit

register_resolvers()


@hydra.main(version_base="1.3", config_path="../configs", config_name="inner_loop")
@user_errors_exit
def main(cfg: DictConfig) -> None:
    record, _, evaluate = record_inner_loop(cfg, cfg.warmup_epochs, cfg.window, keep_path=True)
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
    surface = accuracy_surface(evaluate, origin, u, v, xs, ys)
    fig, axes = figure(1, width=6, height=5)
    ax = axes[0][0]
    contour = ax.contourf(xs, ys, surface, levels=20, cmap="viridis")
    fig.colorbar(contour, ax=ax, label="test accuracy")
    ax.plot(fast_xy[:, 0], fast_xy[:, 1], ".-", color="white", ms=3, lw=0.8, label="fast weights")
    ax.plot(slow_xy[:, 0], slow_xy[:, 1], "o-", color=METHOD_COLORS["lookahead"], ms=5, label="slow weights")
    ax.set(
        title=f"{cfg.dataset.name}: accuracy on the plane of three fast-weight snapshots\n"
        f"k {cfg.lookahead.k}, alpha {cfg.lookahead.alpha}, lr {cfg.optimizer.lr}",
        xlabel="direction 1 (weight-space distance)",
        ylabel="direction 2 (weight-space distance)",
    )
    ax.legend(loc="upper right", fontsize=8)
    out = Path(hydra.utils.to_absolute_path(cfg.out))
    written = save(fig, out / "surface", formats=("png", "pdf"))
    summary = {
        "fast_accuracy_last": record.fast_accuracy[-1],
        "slow_accuracy_last": record.slow_accuracy[-1],
        "surface_max": float(surface.max()),
        "surface_min": float(surface.min()),
    }
    (out / "surface.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {', '.join(map(str, written))}; {json.dumps(summary)}")


if __name__ == "__main__":
    main()
