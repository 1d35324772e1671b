"""The power of the verdict rule as it decides, simulated: both tests at a row's level.

A row is decided when both the t-test's and the sign-flip test's p-values are below its level
(vmae.report.stats), so its power is not the t-test's: near the sign-flip floor only same-sign
patterns can reject. ``rule_power`` simulates whole rows (normal differences of a planning SD, the
same draws for every effect); ``minimum_detectable_effect`` and ``seeds_needed`` search it, per kind
of test; ``sd_upper_bound`` is the conservative planning SD of a small pilot; ``null_rejection_rate``
is how often the rule rejects a true null whose differences have the shape of a row's own (centred
and resampled): the check a reader runs when the differences look skewed. ``rule_p_batch`` gives the
rule's p-value of many rows at once (vmae.report.error_rates), with ``sign_flip_p_batch``, the
sign-flip counts of ``scipy.stats.permutation_test`` for a batch of rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower

from vmae.report.stats import (
    CAN_REVERSE,
    EQUIVALENCE,
    INTERACTION,
    MIN_SEEDS,
    NON_INFERIORITY,
    SIGN_FLIP_SEED,
    SUPERIORITY,
    TREND,
    _quiet,
    _spread,
    fewest_seeds,
)

MAX_PLANNED_SEEDS = 1000  # seeds_needed stops counting here (it returns one more)
SIMULATED_MAX_SEEDS = 200  # above this the sign-flip floor is far below any level: seeds_needed walks the t-test
PLANNING_CONFIDENCE = 0.80  # the one-sided upper confidence bound of a pilot's SD that seeds are planned from
SIMULATED_STUDIES = 2000  # draws of a power simulation (power's standard error at 0.8: 0.009)
SIMULATION_EXACT_SEEDS = 12  # simulations enumerate sign patterns up to here, Monte Carlo above
SIMULATION_RESAMPLES = 4000  # ... with this many patterns a draw
POWER = 0.80  # of the minimum detectable effect and of the seeds a claim needs


@lru_cache(maxsize=32)
def _sign_patterns(n: int, resamples: int) -> np.ndarray:
    """(P, n) sign patterns: all 2**n up to ``SIMULATION_EXACT_SEEDS``, else ``resamples`` random."""
    if n <= SIMULATION_EXACT_SEEDS:
        return 1.0 - 2.0 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    return np.random.default_rng(SIGN_FLIP_SEED).choice([-1.0, 1.0], size=(resamples, n))


def sign_flip_p_batch(values: np.ndarray, alternative: str = "two-sided",
                      resamples: int = SIMULATION_RESAMPLES) -> np.ndarray:
    """``sign_flip_p`` of each row of ``values`` (D, n) at once, for simulations: the same counts as
    ``scipy.stats.permutation_test`` (exact up to ``SIMULATION_EXACT_SEEDS``; Monte Carlo above with
    ``resamples`` patterns shared by every row and scipy's +1 correction). Returns (D,)."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    n = values.shape[1]
    patterns = _sign_patterns(n, resamples)
    adjustment = 0 if n <= SIMULATION_EXACT_SEEDS else 1
    observed = values.mean(axis=1)
    gamma = np.abs(observed) * np.finfo(float).eps * 100  # scipy's tolerance for equal statistics
    less = np.empty(len(values))
    greater = np.empty(len(values))
    chunk = max(1, 2 ** 22 // len(patterns))
    for start in range(0, len(values), chunk):
        part = slice(start, start + chunk)
        null = patterns @ values[part].T / n  # (P, chunk)
        less[part] = ((null <= observed[part] + gamma[part]).sum(axis=0) + adjustment) / (len(patterns) + adjustment)
        greater[part] = ((null >= observed[part] - gamma[part]).sum(axis=0) + adjustment) / (len(patterns) + adjustment)
    p = {"less": less, "greater": greater, "two-sided": 2 * np.minimum(less, greater)}[alternative]
    return np.clip(p, 0.0, 1.0)


def _draws(n: int, seed: int = 0) -> np.ndarray:
    """Standard normal (SIMULATED_STUDIES, n): the same draws for every effect (common random
    numbers, so power is monotone in the effect and searches converge)."""
    return np.random.default_rng([seed, n]).standard_normal((SIMULATED_STUDIES, n))


def _t_p_batch(d: np.ndarray, kind: str, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The t-test's p-value of each row of ``d`` (D, n) as ``test`` computes it, and the mean it
    tests (shifted by the margin for non-inferiority). Returns two (D,) arrays."""
    n = d.shape[1]
    mean = d.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = d.std(axis=1, ddof=1) / math.sqrt(n)
        if kind == EQUIVALENCE:
            return np.maximum(stats.t.sf((mean + margin) / se, n - 1), stats.t.cdf((mean - margin) / se, n - 1)), mean
        shifted = mean + (margin if kind == NON_INFERIORITY else 0.0)
        return 2 * stats.t.sf(np.abs(shifted / se), n - 1), shifted


def rule_p_batch(d: np.ndarray, kind: str, margin: float = 0.0) -> np.ndarray:
    """The rule's p-value (the larger of the t-test's and the sign-flip test's, as ``test`` computes
    them) of each row of ``d`` (D, n) differences at once; NaN without spread. Returns (D,)."""
    p_t, _ = _t_p_batch(d, kind, margin)
    if kind == EQUIVALENCE:
        p_sf = np.maximum(sign_flip_p_batch(d + margin, "greater"), sign_flip_p_batch(d - margin, "less"))
    else:
        p_sf = sign_flip_p_batch(d + (margin if kind == NON_INFERIORITY else 0.0), "two-sided")
    return np.where(np.isnan(p_t), np.nan, np.maximum(p_t, p_sf))


def _rule_rejects(d: np.ndarray, kind: str, margin: float, level: float, side: int = 1) -> np.ndarray:
    """Which simulated studies (rows of ``d``: (D, n) differences) the rule decides at ``level`` on
    ``side`` (+1: towards the claim; -1: reversed, two-sided tests only). The sign-flip test runs
    only where the t-test already rejects."""
    decided = np.zeros(len(d), dtype=bool)
    if d.shape[1] < MIN_SEEDS:
        return decided
    p_t, tested = _t_p_batch(d, kind, margin)
    candidates = (p_t < level) & ((side * tested > 0) if kind != EQUIVALENCE else True)
    if candidates.any():
        decided[candidates] = rule_p_batch(d[candidates], kind, margin) < level
    return decided


def rule_power(effect: float, sd: float, n_seeds: int, level: float, kind: str = SUPERIORITY,
               margin: float = 0.0) -> float:
    """The share of simulated studies (normal differences of mean ``effect`` and ``sd`` at
    ``n_seeds`` seeds) that the rule decides towards the claim at ``level``: both tests, as
    ``test`` and ``rejects`` decide. Superiority and trend: the claim's side (effect > 0 holds)."""
    if not sd > 0 or not level > 0 or n_seeds < 2:
        return math.nan
    side = -1 if kind in (SUPERIORITY, TREND, INTERACTION) and effect < 0 else 1  # the sign the true effect has
    return float(_rule_rejects(effect + sd * _draws(n_seeds), kind, margin, level, side).mean())


def _t_power(distance: float, n: int, level: float, sides: str) -> float:
    return float(_quiet(TTestPower().power, effect_size=distance, nobs=n, alpha=level, alternative=sides))


@lru_cache(maxsize=512)
def _standard_mde(n: int, level: float, power: float) -> float:
    """The smallest standardised effect (effect / sd) the rule decides with ``power`` at ``n`` seeds
    and ``level`` (two-sided, towards its side); infinite where it never reaches ``power``."""
    def reaches(e: float) -> bool:
        return rule_power(e, 1.0, n, level) >= power

    high = 1.0
    while not reaches(high):
        high *= 2
        if high > 1e3:
            return math.inf
    low = 0.0
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
        if high - low < 1e-3:
            break
    return high


def minimum_detectable_effect(sd: float, n_seeds: int, level: float, kind: str = SUPERIORITY,
                              margin: float = 0.0, power: float = POWER) -> float:
    """What a row at ``n_seeds`` seeds and ``level`` can decide with ``power``, in top-1 points:

    - superiority / trend / interaction: the smallest true |A - B| (slope, change of A - B) it finds;
    - non-inferiority: the smallest true A - B it shows non-inferior (may be negative: above -margin);
    - equivalence: the largest true |A - B| it shows equivalent (NaN when not even equal arms are);

    infinite below ``fewest_seeds(level)``; NaN without a spread to plan from."""
    if n_seeds < 2 or not sd > 0:
        return math.nan
    if n_seeds < fewest_seeds(level):
        return math.inf
    if kind == EQUIVALENCE:
        if rule_power(0.0, sd, n_seeds, level, EQUIVALENCE, margin) < power:
            return math.nan
        low, high = 0.0, margin
        for _ in range(30):
            middle = (low + high) / 2
            low, high = (middle, high) if rule_power(middle, sd, n_seeds, level, EQUIVALENCE, margin) >= power \
                else (low, middle)
            if high - low < 1e-3 * margin:
                break
        return low
    distance = _standard_mde(n_seeds, float(level), power) * sd
    return distance - margin if kind == NON_INFERIORITY else distance


def seeds_needed(effect: float, sd: float, level: float, kind: str = SUPERIORITY, margin: float = 0.0,
                 power: float = POWER) -> float:
    """Paired seeds at which the rule (both tests, at ``level``) decides a true difference
    ``effect`` towards the claim with ``power``, simulated at ``sd``; infinite where no number of
    seeds decides it (a non-inferiority whose true difference is below -margin, an equivalence
    whose true difference is outside the margin); ``MAX_PLANNED_SEEDS + 1`` where more than that are
    needed. Above ``SIMULATED_MAX_SEEDS`` the t-test's power stands for the rule's.

    Superiority and trend: towards the effect's own sign (a true +effect holds, -effect reverses)."""
    if not sd > 0:
        return fewest_seeds(level)
    if kind == NON_INFERIORITY:
        distance, sides = effect + margin, "larger"
    elif kind == EQUIVALENCE:
        distance, sides = margin - abs(effect), "larger"
    else:
        distance, sides = abs(effect), "two-sided"
    if not distance > 0:
        return math.inf
    # the t-test alone is a lower bound: start there, then walk up until the simulated rule reaches power
    n = fewest_seeds(level)
    while n <= MAX_PLANNED_SEEDS and _t_power(distance / sd, n, level, sides) < power:
        n += 1
    while n <= SIMULATED_MAX_SEEDS and rule_power(effect, sd, n, level, kind, margin) < power:
        n += 1
    return min(n, MAX_PLANNED_SEEDS + 1)


def sd_upper_bound(sd: float, n_seeds: int, confidence: float = PLANNING_CONFIDENCE) -> float:
    """The one-sided ``confidence`` upper bound of a standard deviation estimated from ``n_seeds``
    values (chi-square, ``n - 1`` degrees of freedom): a planning SD that a small pilot does not
    understate four times in five."""
    if n_seeds < 2 or not sd >= 0:
        return math.nan
    df = n_seeds - 1
    return float(sd * math.sqrt(df / stats.chi2.ppf(1 - confidence, df)))


def null_rejection_rate(differences: Sequence[float], kind: str, margin: float, level: float,
                        draws: int = SIMULATED_STUDIES, seed: int = 0) -> float:
    """How often the rule rejects a true null at ``level`` when the differences have the shape of
    ``differences``: they are moved onto the null (mean 0; non-inferiority: -margin; equivalence:
    +margin) and resampled with replacement, ``draws`` times. Near ``level`` or below it the rule
    keeps its level for this shape; well above it, skew breaks the level."""
    d = np.asarray(differences, dtype=float)
    n = d.size
    if n < 2 or not _spread(d):
        return math.nan
    centre = {NON_INFERIORITY: -margin, EQUIVALENCE: margin}.get(kind, 0.0)
    resampled = np.random.default_rng(seed).choice(d - d.mean() + centre, size=(draws, n), replace=True)
    varied = resampled.std(axis=1) > 0
    decided = np.zeros(draws, dtype=bool)
    decided[varied] = _rule_rejects(resampled[varied], kind, margin, level)
    if kind in CAN_REVERSE:  # a two-sided null is also rejected on the other side
        decided[varied] |= _rule_rejects(resampled[varied], kind, margin, level, side=-1)
    return float(decided.mean())
