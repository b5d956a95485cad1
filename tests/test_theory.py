"""Section 3 theory: NQM closed form vs Monte-Carlo, Proposition 1, and CM vs Lookahead(CM) rates
checked against our own Lookahead class on a real quadratic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookahead import Lookahead
from lookahead.theory import nqm, quadratic

A = 1.0 / np.arange(1, 11)  # a_i = 1/i
SIGMA2 = 1.0 / A
X0 = np.ones(10)


def test_variance_ratio_matches_the_steady_state_of_the_slow_recursion():
    lr, k, alpha = 0.7, 5, 0.5
    b = 1 - lr * A
    c = 1 - alpha + alpha * b**k
    per_sync_noise = alpha**2 * lr**2 * A**2 * SIGMA2 * (1 - b ** (2 * k)) / (1 - b**2)
    np.testing.assert_allclose(nqm.lookahead_variance(A, SIGMA2, lr, k, alpha), per_sync_noise / (1 - c**2))
    assert (nqm.lookahead_variance_ratio(A, lr, k, alpha) < 1).all()
    np.testing.assert_allclose(nqm.lookahead_variance_ratio(A, lr, k, 1.0), 1.0)  # alpha = 1 is SGD


@pytest.mark.parametrize(("k", "alpha"), [(1, 1.0), (5, 0.5), (3, 0.8)])
def test_closed_form_matches_monte_carlo(k, alpha):
    lr, syncs, chains = 0.9, 60, 4000
    mean, var = nqm.lookahead_moments(A, SIGMA2, lr, k, alpha, X0, syncs)
    exact = nqm.expected_loss(A, mean, var)
    simulated = nqm.simulate(A, SIGMA2, lr, X0, syncs, k=k, alpha=alpha, chains=chains, seed=1)
    # each chain's loss is a sum of 10 scaled chi-square terms; 4000 chains -> ~3 % relative error (3 sigma)
    np.testing.assert_allclose(simulated[10:], exact[10:], rtol=0.06)
    steady = nqm.expected_loss(A, 0 * A, nqm.lookahead_variance(A, SIGMA2, lr, k, alpha))
    assert simulated[-20:].mean() == pytest.approx(steady, rel=0.04)


def test_sgd_moments_are_lookahead_with_k1_alpha1():
    m1, v1 = nqm.sgd_moments(A, SIGMA2, 0.5, X0, 20)
    m2, v2 = nqm.lookahead_moments(A, SIGMA2, 0.5, 1, 1.0, X0, 20)
    np.testing.assert_allclose(m1, m2)
    np.testing.assert_allclose(v1, v2)


def test_matched_sgd_learning_rate_reaches_the_target_loss():
    target = nqm.expected_loss(A, 0 * A, nqm.lookahead_variance(A, SIGMA2, 1.0, 5, 0.5))
    lr = nqm.sgd_lr_for_loss(A, SIGMA2, target)
    assert 0 < lr < 1.0  # SGD needs a smaller step to get as low
    assert nqm.expected_loss(A, 0 * A, nqm.sgd_variance(A, SIGMA2, lr)) == pytest.approx(target, rel=1e-6)


def test_optimal_alpha_minimises_the_loss_on_the_line():
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    A2 = q @ np.diag(np.linspace(0.1, 3, 6)) @ q.T
    b = rng.standard_normal(6)
    theta0 = rng.standard_normal(6)
    thetak = theta0.copy()
    for _ in range(5):  # k gradient steps
        thetak -= 0.3 * (A2 @ thetak - b)
    alpha = quadratic.optimal_alpha(A2, b, theta0, thetak)

    def loss(al):
        x = theta0 + al * (thetak - theta0)
        return 0.5 * x @ A2 @ x - b @ x

    grid = np.linspace(alpha - 0.5, alpha + 0.5, 2001)
    assert grid[np.argmin([loss(g) for g in grid])] == pytest.approx(alpha, abs=1e-3)


def _empirical_rate(momentum: float, lams, lr: float, lookahead: bool, steps: int = 2000) -> float:
    x = torch.nn.Parameter(torch.ones(len(lams), dtype=torch.float64))
    h = torch.tensor(lams, dtype=torch.float64)
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum)
    if lookahead:
        opt = Lookahead(opt, k=20, alpha=0.5)
    norms = []
    for _ in range(steps):
        opt.zero_grad()
        x.grad = h * x.detach()
        opt.step()
        norms.append(float(x.detach().norm()))
    start, end = steps // 2, steps - steps % 20  # compare at syncs
    return (norms[end - 1] / norms[start - 1]) ** (1 / (end - start))


@pytest.mark.parametrize("momentum", [0.3, 0.9, 0.97])
def test_rates_match_training_with_our_optimizer(momentum):
    lams, lr = np.array([0.01, 1.0]), 1.0
    assert _empirical_rate(momentum, lams, lr, False) == pytest.approx(
        quadratic.cm_rate(lams, lr, momentum), abs=3e-3
    )
    assert _empirical_rate(momentum, lams, lr, True) == pytest.approx(
        quadratic.lookahead_rate(lams, lr, momentum, 20, 0.5), abs=3e-3
    )


def test_lookahead_helps_under_damped_and_slows_over_damped_momentum():
    # the low-curvature direction of a quadratic with condition number 100, lr = 1 / L
    lam, lr = np.array([0.01]), 1.0
    mu_star = quadratic.critical_momentum(0.01, lr)  # 0.81
    for under in (0.95, 0.97, 0.99):  # (just above mu*, at 0.9, LA is still slightly slower)
        assert under > mu_star
        assert quadratic.lookahead_rate(lam, lr, under, 20, 0.5) < quadratic.cm_rate(lam, lr, under)
    for over in (0.0, 0.5, 0.8):
        assert quadratic.lookahead_rate(lam, lr, over, 20, 0.5) > quadratic.cm_rate(lam, lr, over)


# ---- the NQM figure: Lookahead beyond SGD's stability limit, matched final loss, per-alpha curves ----


def test_stability_limit_by_hand():
    assert nqm.max_stable_lr(A) == pytest.approx(2.0)  # SGD: |1 - lr a| < 1 for a_max = 1
    # Lookahead, k 5, alpha 0.5: |1 - alpha + alpha b^5| < 1 <=> b^5 > 1 - 2 / alpha = -3
    assert nqm.max_stable_lr(A, 5, 0.5) == pytest.approx(1 + 3 ** (1 / 5))
    assert nqm.max_stable_lr(A, 4, 0.5) == pytest.approx(2.0)  # even k: b^4 >= 0, no extension


def test_lookahead_variance_beyond_sgds_limit_matches_monte_carlo():
    lr, k, alpha = 2.1, 5, 0.5  # SGD diverges (|1 - 2.1| > 1), Lookahead's slow weights do not
    assert np.isinf(nqm.steady_loss(A, SIGMA2, lr))
    steady = nqm.steady_loss(A, SIGMA2, lr, k, alpha)
    simulated = nqm.simulate(A, SIGMA2, lr, X0, 400, k=k, alpha=alpha, chains=4000, seed=3)
    assert simulated[-100:].mean() == pytest.approx(steady, rel=0.05)
    # where SGD is stable the per-sync formula is Proposition 2 exactly
    np.testing.assert_allclose(
        nqm.lookahead_variance(A, SIGMA2, 0.7, k, alpha),
        nqm.lookahead_variance_ratio(A, 0.7, k, alpha) * nqm.sgd_variance(A, SIGMA2, 0.7),
    )


def test_matched_curves_settle_at_the_target_and_follow_the_closed_form():
    target = 0.5
    curves = nqm.matched_curves(A, SIGMA2, X0, target, 5, [0.2, 0.8], steps=3000)
    assert set(curves) == {"sgd", "alpha=0.2", "alpha=0.8"}
    for c in curves.values():
        assert nqm.steady_loss(A, SIGMA2, c["lr"], c["k"], c["alpha"]) == pytest.approx(target, rel=1e-8)
        assert c["loss"][-1] == pytest.approx(target, rel=1e-3)  # 3000 steps: settled
        b = 1 - c["lr"] * A  # closed form by hand at sync 7 (step 7k): mean c^T x0, variance V (1 - c^2T)
        slow = 1 - c["alpha"] + c["alpha"] * b ** c["k"]
        var = nqm.lookahead_variance(A, SIGMA2, c["lr"], c["k"], c["alpha"]) * (1 - slow**14)
        assert c["loss"][7] == pytest.approx(0.5 * np.sum(A * ((slow**7 * X0) ** 2 + var)))
        simulated = nqm.simulate(A, SIGMA2, c["lr"], X0, 60, k=c["k"], alpha=c["alpha"], chains=4000, seed=5)
        np.testing.assert_allclose(simulated[5:], c["loss"][5:61], rtol=0.06)
    # a smaller alpha takes a larger inner step to settle at the same loss
    assert curves["alpha=0.2"]["lr"] > curves["alpha=0.8"]["lr"] > curves["sgd"]["lr"]


def test_frontier_alpha_one_is_sgd_and_speedup_appears_only_at_low_loss():
    sgd = nqm.frontier(A, SIGMA2, 1, 1.0, 20)
    assert sgd["lr"][-1] == pytest.approx(2.0, rel=1e-5)
    for lr, loss, rate in zip(sgd["lr"], sgd["loss"], sgd["rate"]):  # alpha = 1 is SGD, for any k
        assert nqm.steady_loss(A, SIGMA2, lr, 5, 1.0) == pytest.approx(
            loss, rel=1e-4
        )  # ill-conditioned at the edge
        assert nqm.convergence_rate(A, lr, 5, 1.0) == pytest.approx(rate, rel=1e-9)
        assert loss == pytest.approx(float(np.sum(0.5 * A * nqm.sgd_variance(A, SIGMA2, lr))))
    f = nqm.frontier(A, SIGMA2, 5, 0.5, 20)
    for lr, loss, rate in zip(f["lr"], f["loss"], f["rate"]):
        assert loss == pytest.approx(nqm.steady_loss(A, SIGMA2, lr, 5, 0.5))
        assert rate == pytest.approx(np.max(np.abs(0.5 + 0.5 * (1 - lr * A) ** 5)) ** 0.2)
    alphas = np.linspace(0.05, 1, 20)
    low, _ = nqm.best_speedup(A, SIGMA2, 0.05, 5, alphas)
    high, _ = nqm.best_speedup(A, SIGMA2, 5.0, 5, alphas)
    assert low > 1.1 and high == pytest.approx(1.0, abs=0.02)
