"""The noisy quadratic model (NQM) of Section 3 and Proposition 2.

Loss L(x) = 1/2 sum_i a_i (x_i - c_i)^2 with c_i ~ N(0, sigma_i^2) drawn afresh at every step, so the
stochastic gradient is a_i (x_i - c_i). With SGD step size gamma, each coordinate is the AR(1) process
x <- b x + gamma a c, b = 1 - gamma a. Lookahead runs k such steps from the slow weights phi and sets
phi <- (1 - alpha) phi + alpha theta_k, again linear in phi plus independent noise:

    mean:      E[x_{t+1}] = b E[x_t]                                   (SGD, per step)
               E[phi_{T+1}] = (1 - alpha + alpha b^k) E[phi_T]          (Lookahead, per k steps)
    variance:  V_SGD = gamma^2 a^2 sigma^2 / (1 - b^2)
               V_LA  = alpha^2 (1 - b^2k) / (alpha^2 (1 - b^2k) + 2 alpha (1 - alpha)(1 - b^k)) V_SGD

"Expected loss" below is the expected excess loss 1/2 sum_i a_i (E[x_i]^2 + Var[x_i]); the constant
1/2 sum_i a_i sigma_i^2 that no optimizer can remove is left out. Lookahead is measured at its slow
weights, i.e. after a sync.
"""

from __future__ import annotations

import numpy as np


def sgd_variance(a: np.ndarray, sigma2: np.ndarray, lr: float) -> np.ndarray:
    """Steady-state variance of each coordinate under SGD (needs 0 < lr * a < 2)."""
    b = 1.0 - lr * a
    return lr**2 * a**2 * sigma2 / (1.0 - b**2)


def lookahead_variance_ratio(a: np.ndarray, lr: float, k: int, alpha: float) -> np.ndarray:
    """V_LA / V_SGD per coordinate (Proposition 2); < 1 for 0 < alpha < 1."""
    b = 1.0 - lr * a
    num = alpha**2 * (1.0 - b ** (2 * k))
    return num / (num + 2.0 * alpha * (1.0 - alpha) * (1.0 - b**k))


def lookahead_variance(a: np.ndarray, sigma2: np.ndarray, lr: float, k: int, alpha: float) -> np.ndarray:
    """Steady-state variance of the slow weights, from the per-sync recursion phi <- c phi + noise with
    c = 1 - alpha + alpha b^k and noise variance alpha^2 gamma^2 a^2 sigma^2 sum_{j<k} b^{2j}. Equal to
    Proposition 2 where |b| < 1, and also valid where Lookahead is stable although SGD is not (|b| >= 1
    but |c| < 1); inf where the slow weights diverge."""
    b = 1.0 - lr * a
    c = 1.0 - alpha + alpha * b**k
    b2 = b**2
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(np.isclose(b2, 1.0), float(k), (1.0 - b2**k) / (1.0 - b2))  # sum_{j<k} b^2j
        var = alpha**2 * lr**2 * a**2 * sigma2 * inner / (1.0 - c**2)
    return np.where(np.abs(c) < 1.0, var, np.inf)


def slow_factor(a: np.ndarray, lr: float, k: int, alpha: float) -> np.ndarray:
    """c = 1 - alpha + alpha (1 - lr a)^k: the slow weights' mean shrinks by c per sync (SGD: k = 1, alpha = 1)."""
    return 1.0 - alpha + alpha * (1.0 - lr * a) ** k


def convergence_rate(a: np.ndarray, lr: float, k: int = 1, alpha: float = 1.0) -> float:
    """Per inner step: the expected loss's transient decays like rate^(2t); rate = max_i |c_i|^(1/k)."""
    return float(np.max(np.abs(slow_factor(a, lr, k, alpha))) ** (1.0 / k))


def steady_loss(a: np.ndarray, sigma2: np.ndarray, lr: float, k: int = 1, alpha: float = 1.0) -> float:
    """Expected excess loss the slow weights settle at (inf where they diverge)."""
    return float(expected_loss(a, 0 * a, lookahead_variance(a, sigma2, lr, k, alpha)))


def max_stable_lr(a: np.ndarray, k: int = 1, alpha: float = 1.0, tol: float = 1e-12) -> float:
    """The largest inner step size with every |c_i| < 1 (2 / max a for SGD; larger for Lookahead with odd
    k and alpha < 1, where the slow step damps the fast weights' oscillation)."""
    lo, hi = 0.0, 4.0 / float(np.max(a))
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.all(np.abs(slow_factor(a, mid, k, alpha)) < 1.0) else (lo, mid)
    return lo


def lr_for_loss(
    a: np.ndarray, sigma2: np.ndarray, target: float, k: int = 1, alpha: float = 1.0, tol: float = 1e-12
) -> float:
    """The inner step size whose steady-state loss equals ``target`` (bisection: the loss grows with the
    step size up to the stability limit); ValueError if no stable step size gets that high."""
    lo, hi = 0.0, max_stable_lr(a, k, alpha) * (1 - 1e-9)
    if steady_loss(a, sigma2, hi, k, alpha) < target:
        raise ValueError(f"no stable step size reaches a steady loss of {target} (k={k}, alpha={alpha})")
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if steady_loss(a, sigma2, mid, k, alpha) < target else (lo, mid)
    return 0.5 * (lo + hi)


def frontier(
    a: np.ndarray, sigma2: np.ndarray, k: int, alpha: float, points: int = 60
) -> dict[str, np.ndarray]:
    """(step size, steady-state loss, convergence rate) over step sizes up to the stability limit,
    geometrically spaced: one curve of the paper's NQM figure (rate against final loss)."""
    lrs = max_stable_lr(a, k, alpha) * np.geomspace(1e-3, 1 - 1e-6, points)
    loss = np.array([steady_loss(a, sigma2, lr, k, alpha) for lr in lrs])
    rate = np.array([convergence_rate(a, lr, k, alpha) for lr in lrs])
    return {"lr": lrs, "loss": loss, "rate": rate}


def time_constant(rate: np.ndarray | float) -> np.ndarray | float:
    """Inner steps for the transient to shrink by e: 1 / -ln(rate)."""
    return -1.0 / np.log(rate)


def best_speedup(
    a: np.ndarray, sigma2: np.ndarray, target: float, k: int, alphas: np.ndarray
) -> tuple[float, float]:
    """(SGD's time constant / the best Lookahead time constant, that alpha) at steady loss ``target``:
    each optimizer's step size is set so it settles exactly at ``target``."""
    sgd = time_constant(convergence_rate(a, lr_for_loss(a, sigma2, target)))
    best, best_alpha = np.inf, 1.0
    for alpha in alphas:
        try:
            lr = lr_for_loss(a, sigma2, target, k, alpha)
        except ValueError:
            continue
        tau = time_constant(convergence_rate(a, lr, k, alpha))
        if tau < best:
            best, best_alpha = tau, float(alpha)
    return float(sgd / best), best_alpha


def expected_loss(a: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """1/2 sum_i a_i (mean_i^2 + var_i) over the last axis."""
    return 0.5 * np.sum(a * (mean**2 + var), axis=-1)


def sgd_moments(a, sigma2, lr: float, x0, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance after t = 0..steps SGD steps from the deterministic x0: shape (steps + 1, dim)."""
    b = 1.0 - lr * a
    t = np.arange(steps + 1)[:, None]
    return x0 * b**t, sgd_variance(a, sigma2, lr) * (1.0 - b ** (2 * t))


def lookahead_moments(
    a, sigma2, lr: float, k: int, alpha: float, x0, syncs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the slow weights after T = 0..syncs syncs (T k inner steps)."""
    b = 1.0 - lr * a
    c = 1.0 - alpha + alpha * b**k
    t = np.arange(syncs + 1)[:, None]
    return x0 * c**t, lookahead_variance(a, sigma2, lr, k, alpha) * (1.0 - c ** (2 * t))


def simulate(
    a: np.ndarray,
    sigma2: np.ndarray,
    lr: float,
    x0: np.ndarray,
    syncs: int,
    k: int = 1,
    alpha: float = 1.0,
    chains: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Monte-Carlo of the same process: mean excess loss over ``chains`` independent runs at the slow
    weights after each of ``syncs`` syncs (k = 1, alpha = 1 is plain SGD, one value per step)."""
    rng = np.random.default_rng(seed)
    slow = np.broadcast_to(x0, (chains, len(a))).astype(float).copy()
    losses = [0.5 * np.mean(np.sum(a * slow**2, axis=1))]
    sigma = np.sqrt(sigma2)
    for _ in range(syncs):
        fast = slow.copy()
        for _ in range(k):
            c = rng.standard_normal(fast.shape) * sigma
            fast -= lr * a * (fast - c)
        slow += alpha * (fast - slow)
        losses.append(0.5 * np.mean(np.sum(a * slow**2, axis=1)))
    return np.array(losses)


def sgd_lr_for_loss(a: np.ndarray, sigma2: np.ndarray, target: float, tol: float = 1e-10) -> float:
    """The SGD step size whose steady-state expected loss equals ``target``."""
    return lr_for_loss(a, sigma2, target, 1, 1.0, tol)


def matched_curves(
    a: np.ndarray, sigma2: np.ndarray, x0: np.ndarray, target: float, k: int, alphas, steps: int
) -> dict[str, dict]:
    """Expected loss over ``steps`` inner steps of SGD and of Lookahead for each alpha, every one with
    the step size that makes it settle at ``target``: {"sgd" | "alpha=0.5": {"lr", "steps", "loss"}}.
    Lookahead is read at its slow weights, after each sync."""
    curves = {}
    for name, kk, alpha in [("sgd", 1, 1.0)] + [(f"alpha={al:g}", k, float(al)) for al in alphas]:
        lr = lr_for_loss(a, sigma2, target, kk, alpha)
        mean, var = lookahead_moments(a, sigma2, lr, kk, alpha, x0, steps // kk)
        curves[name] = {
            "k": kk,
            "alpha": alpha,
            "lr": lr,
            "steps": np.arange(steps // kk + 1) * kk,
            "loss": expected_loss(a, mean, var),
        }
    return curves


def steps_to_within(curve: np.ndarray, steps: np.ndarray, final: float, tolerance: float = 0.05) -> int:
    """First step at which the loss is within ``tolerance`` (relative) of ``final``."""
    return int(steps[np.argmax(curve <= (1 + tolerance) * final)])
