"""Deterministic quadratic figure: convergence rate of classical momentum (CM) and Lookahead(CM) as a
function of momentum, for the low-curvature direction of quadratics of condition number kappa.

    python experiments/quadratic.py [k=20 alpha=0.5 ...]   -> results/figures/quadratic.{png,pdf,json}
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "the quadratic convergence-rate figure")

import json
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from lookahead.analysis.plotting import OKABE_ITO, figure, save
from lookahead.cli import user_errors_exit
from lookahead.errors import ConfigError
from lookahead.theory import quadratic
from lookahead.train.signals import stop_cleanly


@hydra.main(version_base="1.3", config_path="../configs", config_name="quadratic")
@user_errors_exit
@stop_cleanly("nothing saved (quadratic.{png,pdf,json} are written at the end)")
def main(cfg: DictConfig) -> None:
    if not 0 < cfg.alpha <= 1 or cfg.k < 1:
        raise ConfigError(f"need k >= 1 and 0 < alpha <= 1, got k={cfg.k}, alpha={cfg.alpha}")
    momenta = np.linspace(cfg.momentum_min, cfg.momentum_max, cfg.points)
    fig, axes = figure(len(cfg.kappas))
    data = {"momentum": momenta.tolist(), "kappas": {}}
    for ax, kappa in zip(axes[0], tqdm(cfg.kappas, desc="condition numbers", dynamic_ncols=True)):
        lam = np.array([1.0 / kappa])
        cm = np.array([quadratic.cm_rate(lam, cfg.lr, m) for m in momenta])
        la = np.array([quadratic.lookahead_rate(lam, cfg.lr, m, cfg.k, cfg.alpha) for m in momenta])
        mu_star = quadratic.critical_momentum(1.0 / kappa, cfg.lr)
        ax.plot(momenta, cm, color=OKABE_ITO[0], label="CM")
        ax.plot(momenta, la, color=OKABE_ITO[3], label=f"Lookahead(CM), k {cfg.k}, alpha {cfg.alpha}")
        ax.axvline(mu_star, color="grey", ls=":", label=f"critical momentum {mu_star:.3f}")
        ax.axvspan(mu_star, momenta[-1], color="grey", alpha=0.08)
        ax.text(mu_star, ax.get_ylim()[0], " under-damped", fontsize=8, va="bottom")
        ax.set(
            title=f"condition number {kappa}, lr = 1/L",
            xlabel="momentum",
            ylabel="convergence rate per step (lower is faster)",
        )
        ax.legend(fontsize=7, loc="lower left")
        better = momenta[la < cm]
        data["kappas"][str(kappa)] = {
            "cm": cm.tolist(),
            "lookahead": la.tolist(),
            "critical_momentum": mu_star,
            "lookahead_faster_from": float(better.min()) if len(better) else None,
            "best_cm": float(cm.min()),
            "best_lookahead": float(la.min()),
        }
    out = Path(hydra.utils.to_absolute_path(cfg.out))
    written = save(fig, out / "quadratic", formats=("png", "pdf"))
    (out / "quadratic.json").write_text(json.dumps(data) + "\n")
    print(f"wrote {', '.join(map(str, written))}, {out / 'quadratic.json'}")
    for kappa, d in data["kappas"].items():
        print(
            f"kappa {kappa}: critical momentum {d['critical_momentum']:.3f}; Lookahead faster for momentum >= "
            f"{d['lookahead_faster_from']}; best rate CM {d['best_cm']:.5f}, Lookahead {d['best_lookahead']:.5f}"
        )


if __name__ == "__main__":
    main()
