"""Noisy quadratic model figure: steady-state loss vs alpha (k = 5), and loss over time of Lookahead
and of SGD tuned to the same final loss; closed form with Monte-Carlo points on top.

    python experiments/nqm.py [k=5 lookahead_alpha=0.5 ...]    -> results/figures/nqm.{png,pdf,json}
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from lookahead.analysis.plotting import OKABE_ITO, figure, save
from lookahead.cli import user_errors_exit
from lookahead.theory import nqm


@hydra.main(version_base="1.3", config_path="../configs", config_name="nqm")
@user_errors_exit
def main(cfg: DictConfig) -> None:
    if not 0 < cfg.lookahead_alpha <= 1 or cfg.k < 1:
        raise ValueError(
            f"need k >= 1 and 0 < lookahead_alpha <= 1, got k={cfg.k}, alpha={cfg.lookahead_alpha}"
        )
    a = np.arange(1, cfg.dim + 1, dtype=float) ** -cfg.spectrum_power
    sigma2 = cfg.noise_scale / a
    x0 = np.full(cfg.dim, float(cfg.x0))
    if max(cfg.lrs) * a.max() >= 2 or cfg.lookahead_lr * a.max() >= 2:
        raise ValueError(f"step sizes must satisfy lr * max(a) < 2 (max a = {a.max()})")
    fig, axes = figure(2)
    ax_alpha, ax_time = axes[0]
    data: dict = {"alphas": list(cfg.alphas), "loss_vs_alpha": {}}

    for color, lr in zip(OKABE_ITO, cfg.lrs):
        sgd_loss = nqm.expected_loss(a, 0 * a, nqm.sgd_variance(a, sigma2, lr))
        la_loss = [
            float(nqm.expected_loss(a, 0 * a, nqm.lookahead_variance(a, sigma2, lr, cfg.k, al)))
            for al in cfg.alphas
        ]
        ax_alpha.plot(cfg.alphas, la_loss, "o-", color=color, label=f"Lookahead, lr {lr}")
        ax_alpha.axhline(sgd_loss, color=color, ls="--", lw=1, label=f"SGD, lr {lr}")
        data["loss_vs_alpha"][str(lr)] = {"lookahead": la_loss, "sgd": float(sgd_loss)}
    ax_alpha.set(
        title=f"NQM steady-state loss (k = {cfg.k})",
        xlabel="alpha",
        ylabel="expected excess loss",
        yscale="log",
    )
    ax_alpha.legend(fontsize=7, ncol=2)

    syncs = cfg.steps // cfg.k
    la_mean, la_var = nqm.lookahead_moments(
        a, sigma2, cfg.lookahead_lr, cfg.k, cfg.lookahead_alpha, x0, syncs
    )
    la_curve = nqm.expected_loss(a, la_mean, la_var)
    sgd_lr = nqm.sgd_lr_for_loss(a, sigma2, float(la_curve[-1]))
    sgd_mean, sgd_var = nqm.sgd_moments(a, sigma2, sgd_lr, x0, cfg.steps)
    sgd_curve = nqm.expected_loss(a, sgd_mean, sgd_var)
    steps_la = np.arange(syncs + 1) * cfg.k
    ax_time.plot(
        np.arange(cfg.steps + 1), sgd_curve, color=OKABE_ITO[0], label=f"SGD, lr {sgd_lr:.3f} (matched)"
    )
    ax_time.plot(
        steps_la,
        la_curve,
        color=OKABE_ITO[3],
        label=f"Lookahead, lr {cfg.lookahead_lr}, alpha {cfg.lookahead_alpha}, k {cfg.k}",
    )
    every = max(1, syncs // 25)
    mc_la = nqm.simulate(
        a,
        sigma2,
        cfg.lookahead_lr,
        x0,
        syncs,
        k=cfg.k,
        alpha=cfg.lookahead_alpha,
        chains=cfg.monte_carlo_chains,
        seed=cfg.seed,
    )
    mc_sgd = nqm.simulate(
        a, sigma2, sgd_lr, x0, syncs, k=cfg.k, alpha=1.0, chains=cfg.monte_carlo_chains, seed=cfg.seed + 1
    )
    ax_time.plot(steps_la[::every], mc_la[::every], "x", color=OKABE_ITO[3], ms=4, label="Monte-Carlo")
    ax_time.plot(steps_la[::every], mc_sgd[::every], "x", color=OKABE_ITO[0], ms=4)
    ax_time.set(
        title="NQM loss over time at matched final loss",
        xlabel="inner steps",
        ylabel="expected excess loss",
        yscale="log",
    )
    ax_time.legend(fontsize=7)
    out = Path(hydra.utils.to_absolute_path(cfg.out))
    written = save(fig, out / "nqm", formats=("png", "pdf"))

    # steps until within 5 % of the final loss: how much faster Lookahead gets there
    def settle(curve, steps):
        return int(steps[np.argmax(curve <= 1.05 * curve[-1])])

    data.update(
        matched_sgd_lr=sgd_lr,
        final_loss=float(la_curve[-1]),
        steps_to_5pct={
            "lookahead": settle(la_curve, steps_la),
            "sgd": settle(sgd_curve, np.arange(cfg.steps + 1)),
        },
        monte_carlo_rel_error=float(np.max(np.abs(mc_la[syncs // 5 :] / la_curve[syncs // 5 :] - 1))),
    )
    (out / "nqm.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {', '.join(map(str, written))}, {out / 'nqm.json'}")
    print(
        json.dumps(
            {k: data[k] for k in ("matched_sgd_lr", "final_loss", "steps_to_5pct", "monte_carlo_rel_error")}
        )
    )


if __name__ == "__main__":
    main()
