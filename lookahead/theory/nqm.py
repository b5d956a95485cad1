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
    return lookahead_variance_ratio(a, lr, k, alpha) * sgd_variance(a, sigma2, lr)


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
    """The SGD step size whose steady-state expected loss equals ``target`` (bisection: the loss grows
    monotonically with the step size on (0, 2 / max a))."""
    lo, hi = 0.0, 2.0 / float(np.max(a)) * (1 - 1e-9)
    if expected_loss(a, 0 * a, sgd_variance(a, sigma2, hi)) < target:
        raise ValueError(f"no SGD step size reaches a steady loss of {target}")
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if expected_loss(a, 0 * a, sgd_variance(a, sigma2, mid)) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
