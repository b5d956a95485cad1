"""Noisy quadratic model figure, drawn as the paper draws it: convergence against final loss for SGD and
for Lookahead (k = 5) with 100 evenly spaced alpha overlaid, so each vertical slice compares optimizers
that settle at the same loss; the expected loss over time of SGD and Lookahead tuned to one common final
loss (closed form, Monte-Carlo points on top); and the best speed-up over SGD for other spectra and
noise models, which shows where the effect appears and where it vanishes.

    python experiments/nqm.py [k=5 dim=100 noise_power=0 ...]    -> <out>/nqm.{png,pdf,json}
"""

from __future__ import annotations

from lookahead.progress import announce

announce(__name__, "the noisy quadratic model figure")

import json
from pathlib import Path

import hydra
import matplotlib
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from lookahead.analysis.plotting import OKABE_ITO, figure, save
from lookahead.cli import user_errors_exit
from lookahead.errors import ConfigError
from lookahead.theory import nqm
from lookahead.train.signals import stop_cleanly


def model(dim: int, spectrum_power: float, noise_power: float, noise_scale: float = 1.0):
    """(curvatures a_i = i^-p, noise variances sigma_i^2 = scale * a_i^-q)."""
    a = np.arange(1, dim + 1, dtype=float) ** -spectrum_power
    return a, noise_scale * a**-noise_power


def speedup_curve(a, sigma2, k: int, alphas: np.ndarray, targets: np.ndarray) -> dict[str, list[float]]:
    """Best Lookahead speed-up over SGD (time-constant ratio) at each matched final loss."""
    pairs = [nqm.best_speedup(a, sigma2, float(t), k, alphas) for t in targets]
    return {"loss": targets.tolist(), "speedup": [p[0] for p in pairs], "best_alpha": [p[1] for p in pairs]}


@hydra.main(version_base="1.3", config_path="../configs", config_name="nqm")
@user_errors_exit
@stop_cleanly("nothing saved (nqm.{png,pdf,json} are written at the end)")
def main(cfg: DictConfig) -> None:
    if cfg.k < 1 or cfg.alphas < 1 or not all(0 < al <= 1 for al in cfg.matched_alphas):
        raise ConfigError(f"need k >= 1, alphas >= 1 and 0 < matched_alphas <= 1, got k={cfg.k}")
    a, sigma2 = model(cfg.dim, cfg.spectrum_power, cfg.noise_power, cfg.noise_scale)
    x0 = np.full(cfg.dim, float(cfg.x0))
    alphas = np.linspace(1.0 / cfg.alphas, 1.0, cfg.alphas)  # evenly spaced in (0, 1]
    fig, axes = figure(3, width=5.0, height=4.0)
    ax_rate, ax_time, ax_gain = axes[0]

    # (a) convergence against final loss: one Lookahead curve per alpha, relative to SGD settling at the
    # same loss (SGD's curve, dense, interpolated in log-log: both are smooth and monotone there)
    cmap = matplotlib.colormaps["viridis"]
    sgd = nqm.frontier(a, sigma2, 1, 1.0, 400)
    finite = np.isfinite(sgd["loss"])
    sgd_log_tau = lambda loss: np.interp(  # noqa: E731
        np.log(loss),
        np.log(sgd["loss"][finite]),
        np.log(nqm.time_constant(sgd["rate"][finite])),
        right=np.nan,
    )
    curves = {}
    for alpha in tqdm(alphas, desc="(a) one Lookahead frontier per alpha", dynamic_ncols=True):
        f = nqm.frontier(a, sigma2, cfg.k, float(alpha), cfg.points)
        f["relative_time"] = nqm.time_constant(f["rate"]) / np.exp(sgd_log_tau(f["loss"]))
        curves[float(alpha)] = f
        ax_rate.plot(f["loss"], f["relative_time"], color=cmap(alpha), lw=0.6)
    ax_rate.axhline(1.0, ls="--", color="black", lw=1.6, label="SGD (alpha = 1)")
    ax_rate.axvline(cfg.matched_loss, color="grey", lw=0.8, ls=":")
    ax_rate.set(
        title=f"(a) Lookahead (k = {cfg.k}) vs SGD at matched final loss",
        xlabel="final (steady-state) expected loss",
        ylabel="steps to converge, relative to SGD\n(time constant of the transient)",
        xscale="log",
        yscale="log",
        ylim=(0.75, 2.0),
        xlim=(sgd["loss"][finite].min(), np.median(sgd["loss"][finite]) * 30),
    )
    ax_rate.set_yticks([0.8, 0.9, 1, 1.2, 1.5, 2], ["0.8", "0.9", "1", "1.2", "1.5", "2"])
    ax_rate.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_rate.legend(loc="upper right", fontsize=7)
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(cmap=cmap), ax=ax_rate, pad=0.02)
    bar.set_label(f"Lookahead alpha ({cfg.alphas} values in (0, 1])")

    # (b) loss over time, every optimizer tuned to settle at the same loss; the distance to that loss
    # on a log axis makes each decay rate a slope
    matched = nqm.matched_curves(a, sigma2, x0, cfg.matched_loss, cfg.k, cfg.matched_alphas, cfg.steps)
    mc_error = 0.0
    shown_curves = tqdm(
        matched.items(), desc="(b) Monte-Carlo check of the matched curves", dynamic_ncols=True
    )
    for index, (name, c) in enumerate(shown_curves):
        color = "black" if name == "sgd" else OKABE_ITO[(index - 1) % len(OKABE_ITO)]
        label = "SGD" if name == "sgd" else f"Lookahead, {name}"
        settle = nqm.steps_to_within(c["loss"], c["steps"], cfg.matched_loss)
        c["steps_to_5pct"] = settle
        excess = c["loss"] / cfg.matched_loss - 1
        ax_time.plot(c["steps"], excess, color=color, label=f"{label}, lr {c['lr']:.3f}: {settle} steps")
        simulated = nqm.simulate(
            a, sigma2, c["lr"], x0, len(c["steps"]) - 1, k=c["k"], alpha=c["alpha"],
            chains=cfg.monte_carlo_chains, seed=cfg.seed + index,
        )  # fmt: skip
        every = max(1, len(c["steps"]) // 25)
        shown = excess[::every] > 0.1  # below that the Monte-Carlo noise dominates the difference
        ax_time.plot(
            c["steps"][::every][shown],
            (simulated[::every] / cfg.matched_loss - 1)[shown],
            "x",
            color=color,
            ms=4,
        )
        c["monte_carlo_rel_error"] = float(np.max(np.abs(simulated[1:] / c["loss"][1:] - 1)))
        mc_error = max(mc_error, c["monte_carlo_rel_error"])
    ax_time.axhline(0.05, color="grey", lw=0.8, ls=":")
    ax_time.set(
        title=f"(b) all tuned to settle at loss {cfg.matched_loss:g}\n"
        f"(lines: closed form; x: Monte-Carlo, {cfg.monte_carlo_chains} chains)",
        xlabel="inner steps",
        ylabel="expected loss / final loss - 1",
        yscale="log",
        ylim=(1e-3, None),
    )
    ax_time.legend(fontsize=7, title="steps to within 5 %", title_fontsize=7)

    # (c) where it appears: best speed-up over alpha, against the matched final loss, per model
    gains = {}
    variants = (cfg.get("variants") or {}).items()
    for index, (name, (dim, p, q)) in enumerate(
        tqdm(variants, desc="(c) speed-up per model", dynamic_ncols=True)
    ):
        va, vs = model(dim, p, q, cfg.noise_scale)
        losses = nqm.frontier(va, vs, 1, 1.0, 40)["loss"]
        targets = np.geomspace(losses.min() * 1.5, np.median(losses) * 30, 12)
        gains[name] = speedup_curve(va, vs, cfg.k, alphas[:: max(1, len(alphas) // 50)], targets)
        ax_gain.plot(targets, gains[name]["speedup"], "o-", ms=3, color=OKABE_ITO[index % 8], label=name)
    ax_gain.axhline(1.0, color="black", lw=0.8)
    ax_gain.set(
        title=f"(c) best Lookahead speed-up over SGD, k = {cfg.k}",
        xlabel="matched final loss",
        ylabel="SGD steps / Lookahead steps (best alpha)",
        xscale="log",
    )
    ax_gain.legend(fontsize=7)

    out = Path(hydra.utils.to_absolute_path(cfg.out))
    written = save(fig, out / "nqm", formats=("png", "pdf"))
    shown = [float(al) for al in alphas if abs(al * 10 - round(al * 10)) < 1e-9]  # 0.1, 0.2, ..., 1.0
    data = {
        "model": {"dim": cfg.dim, "spectrum_power": cfg.spectrum_power, "noise_power": cfg.noise_power},
        "k": cfg.k,
        "sgd_frontier": {key: v.tolist() for key, v in sgd.items()},
        "lookahead_frontiers": {
            f"{al:g}": {key: v.tolist() for key, v in curves[al].items()} for al in shown
        },
        "matched_loss": cfg.matched_loss,
        "matched": {
            name: {key: (v.tolist() if isinstance(v, np.ndarray) else v) for key, v in c.items()}
            for name, c in matched.items()
        },
        "monte_carlo_rel_error": mc_error,
        "speedup": gains,
    }
    (out / "nqm.json").write_text(json.dumps(data) + "\n")
    print(f"wrote {', '.join(map(str, written))}, {out / 'nqm.json'}")
    print(
        json.dumps(
            {name: {"lr": c["lr"], "steps_to_5pct": c["steps_to_5pct"]} for name, c in matched.items()}
        )
    )
    print(
        json.dumps({name: round(max(g["speedup"]), 3) for name, g in gains.items()}),
        f"MC error {mc_error:.3f}",
    )


if __name__ == "__main__":
    main()
