"""A/B statistics that stay valid when you look at them every hour: the mixture sequential probability
ratio test (mSPRT) of Johari, Koomen, Pekelis & Walsh, "Peeking at A/B tests" (KDD 2017) and "Always
valid inference: continuous monitoring of A/B tests" (Operations Research 70(3), 2022), the test behind
Optimizely's Stats Engine; and the fixed-horizon sample size to plan an experiment with.

Two arms, control A (the champion) and treatment B (the challenger), each a stream of outcomes (a click
0/1, an order value). After ``n_A`` and ``n_B`` outcomes, with means ``m_A``, ``m_B`` and per-outcome
variances ``s²_A``, ``s²_B`` (for 0/1 outcomes ``p̃(1-p̃)`` with ``p̃ = (clicks + ½)/(n + 1)``, so an arm
with no click yet does not claim zero variance; otherwise the sample variance)::

    θ̂ = m_B - m_A                            the absolute lift
    V = s²_A / n_A + s²_B / n_B               the variance of θ̂ (normal approximation)

With a normal mixture ``θ ~ N(0, τ²)`` over the alternatives, the likelihood ratio of "lift θ" against
"no lift" integrates in closed form (Johari et al. 2022, eq. 4, the two-stream case)::

    Λ = sqrt(V / (V + τ²)) · exp( τ² θ̂² / (2 V (V + τ²)) )

Under "no lift" Λ is a non-negative martingale with mean 1, so by Ville's inequality
``P(Λ ever ≥ 1/α) ≤ α``: the **always-valid p-value** is ``p = min(1, min over every look of 1/Λ)``, and
rejecting when ``p ≤ α`` keeps the false-positive rate at most α however often one looks. Here every
arrival after the burn-in (``min_n`` outcomes in each arm, so the plug-in variances mean something) is a
look, which covers any schedule of real looks. Inverting the test at every θ₀ gives the **always-valid
confidence sequence** of the lift, the running intersection over the looks of::

    θ̂ ± sqrt( V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V)) )

τ is the scale of the lifts one expects: this module takes ``τ = mde · |m|`` at the end of the burn-in,
``m`` the mean of both arms together there (the minimum detectable effect, relative, on the level the
arms share; the difference between them plays no part), so τ is fixed before the test proper starts. A smaller τ detects small lifts sooner and large ones later.

The **fixed-horizon sample size** per arm, for a two-sided level-α test of a lift ``δ = mde · |m_A|``
with power ``1 - β`` (the textbook normal approximation, e.g. Chow, Shao & Wang, *Sample Size
Calculations in Clinical Research*, §4.2)::

    n = (z_{1-α/2} + z_{1-β})² · (s²_A + s²_B) / δ²        with s²_B = m_B(1-m_B), m_B = m_A(1+mde) for 0/1

It is a planning figure: what a single look at the end would need. The sequential test buys the right to
look at any time with a longer run at exactly the MDE (about 2–3× here) and a shorter one when the lift
is larger than planned.

>>> rng = np.random.default_rng(0)
>>> treated = rng.random(4000) < 0.5
>>> clicks = (rng.random(4000) < np.where(treated, 0.16, 0.10)).astype(float)
>>> result = msprt(treated, clicks, binary=True, alpha=0.05, mde=0.2)
>>> result.p_value < 0.05 and result.low > 0
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mloop.errors import MalformedInput

MIN_N = 100  # outcomes per arm before the first look: plug-in variances of a handful of clicks mislead


@dataclass(frozen=True)
class Sequential:
    """The test after every outcome so far: per arm n and mean, the lift ``θ̂ = m_B - m_A`` with its
    always-valid confidence sequence ``[low, high]`` (None before the burn-in), the always-valid
    p-value, the mixing scale ``tau`` and ``looks`` (arrivals after the burn-in)."""

    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    lift: float
    low: float | None
    high: float | None
    p_value: float
    tau: float | None
    looks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def msprt(treated: Any, outcomes: Any, *, binary: bool, alpha: float = 0.05, mde: float = 0.1,
          min_n: int = MIN_N) -> Sequential:  # fmt: skip
    """The mSPRT of the outcomes in arrival order; ``treated[i]`` says whether outcome ``i`` came from
    the treatment arm. See the module docstring for the formulas."""
    _check(alpha, mde, min_n)
    b = np.asarray(treated, dtype=bool)
    y = np.asarray(outcomes, dtype=np.float64)
    if b.shape != y.shape or y.ndim != 1:
        raise MalformedInput(
            f"treated and outcomes must be 1-d and of one length; got {b.shape} and {y.shape}."
        )
    n = [np.cumsum(~b), np.cumsum(b)]
    s1 = [np.cumsum(np.where(~b, y, 0.0)), np.cumsum(np.where(b, y, 0.0))]
    s2 = [np.cumsum(np.where(~b, y * y, 0.0)), np.cumsum(np.where(b, y * y, 0.0))]
    final = [int(n[0][-1]) if len(y) else 0, int(n[1][-1]) if len(y) else 0]
    means = [float(s1[k][-1] / final[k]) if final[k] else math.nan for k in (0, 1)]
    lift = means[1] - means[0]
    ready = np.flatnonzero((n[0] >= min_n) & (n[1] >= min_n))
    if not len(ready):
        return Sequential(final[0], final[1], means[0], means[1], lift, None, None, 1.0, None, 0)
    idx = ready
    na, nb = n[0][idx].astype(np.float64), n[1][idx].astype(np.float64)
    ma, mb = s1[0][idx] / na, s1[1][idx] / nb
    va, vb = _variance(s1[0][idx], s2[0][idx], na, binary), _variance(s1[1][idx], s2[1][idx], nb, binary)
    v = va / na + vb / nb
    # The scale of the lifts, fixed at the end of the burn-in from the level of both arms together (the
    # difference between them is not looked at): the control alone is half the data, and a click-through
    # rate of 0.08 read from 100 answers can come out as 0.01, which left the test blind to real lifts.
    pooled = float((s1[0][idx[0]] + s1[1][idx[0]]) / (na[0] + nb[0]))
    tau = mde * abs(pooled)
    if tau <= 0:  # a level of 0 at the burn-in: fall back on the scale of the control's spread
        tau = mde * math.sqrt(float(va[0]))
    tau2 = max(tau * tau, 1e-18)
    theta = mb - ma
    log_lambda = 0.5 * np.log(v / (v + tau2)) + tau2 * theta**2 / (2 * v * (v + tau2))
    p_value = float(min(1.0, math.exp(-float(np.max(log_lambda)))))
    half = np.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log((v + tau2) / v)))
    low, high = float(np.max(theta - half)), float(np.min(theta + half))
    if low > high:  # the running intersection emptied: a sign the model is wrong, report the last interval
        low, high = float(theta[-1] - half[-1]), float(theta[-1] + half[-1])
    return Sequential(final[0], final[1], means[0], means[1], lift, low, high, p_value, tau, len(idx))


def sample_size(baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8,
                binary: bool, sd: float | None = None) -> int:  # fmt: skip
    """The fixed-horizon outcomes per arm to detect a relative lift ``mde`` on ``baseline`` with a
    two-sided level-``alpha`` test and the given ``power``; ``sd`` (per outcome, both arms) is needed
    for a numeric outcome.

    >>> sample_size(0.10, 0.30, binary=True)
    1772
    """
    _check(alpha, mde, 1)
    if not 0 < power < 1:
        raise MalformedInput(f"power must be in (0, 1), like 0.8; got {power}.")
    delta = mde * abs(baseline)
    if binary:
        treated = min(max(baseline * (1 + mde), 0.0), 1.0)
        spread = baseline * (1 - baseline) + treated * (1 - treated)
    else:
        if sd is None or not sd > 0:
            raise MalformedInput("sample_size of a numeric outcome needs its standard deviation sd > 0.")
        spread = 2 * sd * sd
    if delta <= 0 or spread <= 0:
        raise MalformedInput(
            f"No lift to detect: baseline {baseline} with mde {mde} gives a lift of {delta}."
        )
    from scipy.stats import norm  # here, not at the top: it costs every CLI command ~0.5 s to import

    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return math.ceil(z * z * spread / (delta * delta))


def _variance(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, binary: bool) -> np.ndarray:
    if binary:
        p = (s1 + 0.5) / (n + 1.0)
        return p * (1 - p)
    var = (s2 - s1 * s1 / n) / np.maximum(n - 1, 1)
    return np.maximum(var, 1e-12)


def _check(alpha: float, mde: float, min_n: int) -> None:
    if not 0 < alpha < 1:
        raise MalformedInput(f"alpha must be in (0, 1), like 0.05; got {alpha}.")
    if not mde > 0:
        raise MalformedInput(
            f"mde (the relative lift to detect) must be above 0, like 0.1 for 10%; got {mde}."
        )
    if min_n < 1:
        raise MalformedInput(f"min_n must be at least 1; got {min_n}.")
