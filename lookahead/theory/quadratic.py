"""Deterministic quadratics (Section 3): the optimal alpha of Proposition 1, and the convergence rate
of classical momentum (CM) with and without Lookahead.

On L(x) = 1/2 x^T A x, per eigenvalue lambda, CM in PyTorch's form (v <- mu v + g; x <- x - lr v) is
linear in the state s = (x, v):  M = [[1 - lr lambda, -lr mu], [lambda, mu]].
Lookahead around it (momentum kept at a sync) maps s to
    L = [[1 - alpha, 0], [0, 0]] + diag(alpha, 1) M^k
per k inner steps. Rates are spectral radii, per inner step: rho(M) and rho(L)^(1/k), maximised over
the spectrum. CM is under-damped (complex eigenvalues) when mu > (1 - sqrt(lr lambda))^2.
"""

from __future__ import annotations

import numpy as np


def optimal_alpha(A: np.ndarray, b: np.ndarray, theta0: np.ndarray, thetak: np.ndarray) -> float:
    """alpha* = (theta0 - theta*)^T A (theta0 - thetak) / ((theta0 - thetak)^T A (theta0 - thetak)),
    the alpha minimising L(theta0 + alpha (thetak - theta0)) for L = 1/2 x^T A x - b^T x."""
    theta_star = np.linalg.solve(A, b)
    d = theta0 - thetak
    return float((theta0 - theta_star) @ A @ d / (d @ A @ d))


def cm_matrices(lams: np.ndarray, lr: float, momentum: float) -> np.ndarray:
    lams = np.asarray(lams, dtype=float)
    m = np.empty((*lams.shape, 2, 2))
    m[..., 0, 0] = 1.0 - lr * lams
    m[..., 0, 1] = -lr * momentum
    m[..., 1, 0] = lams
    m[..., 1, 1] = momentum
    return m


def lookahead_matrices(lams: np.ndarray, lr: float, momentum: float, k: int, alpha: float) -> np.ndarray:
    mk = np.linalg.matrix_power(cm_matrices(lams, lr, momentum), k)
    out = np.diag([alpha, 1.0]) @ mk
    out[..., 0, 0] += 1.0 - alpha
    return out


def spectral_radius(m: np.ndarray) -> np.ndarray:
    return np.max(np.abs(np.linalg.eigvals(m)), axis=-1)


def cm_rate(lams: np.ndarray, lr: float, momentum: float) -> float:
    """Worst-case per-step contraction factor of CM over the eigenvalues ``lams``."""
    return float(np.max(spectral_radius(cm_matrices(lams, lr, momentum))))


def lookahead_rate(lams: np.ndarray, lr: float, momentum: float, k: int, alpha: float) -> float:
    """Worst-case per-inner-step contraction factor of Lookahead(CM)."""
    return float(np.max(spectral_radius(lookahead_matrices(lams, lr, momentum, k, alpha)) ** (1.0 / k)))


def critical_momentum(lam: float, lr: float) -> float:
    """CM on eigenvalue ``lam`` is over-damped below this momentum, under-damped above it."""
    return (1.0 - np.sqrt(lr * lam)) ** 2
