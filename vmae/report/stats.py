"""Statistics over training seeds: intervals, paired differences, the claims' tests, power, verdicts.

The unit of replication is the training seed: one seed fixes an arm's pretraining, its fine-tuning
order and its head init, and every arm of a study runs the same seeds, so two arms are compared by
their paired differences ``d_s = A_s - B_s`` over the seeds both ran.

- Interval of a mean (a table row) and of a mean paired difference: Student's t-interval
  (``scipy.stats.ttest_1samp(...).confidence_interval``). At 3-10 seeds a percentile bootstrap
  covers far less than its nominal 95% (it cannot reach beyond the observed values).
- A claim's own test, as the claim is worded (``vmae.report.studies.Claim.test``), on the paired
  differences, with the margin ``d`` written down with the claim before any run:
  - superiority "A > B": the two-sided paired t-test of 0 (``scipy.stats.ttest_rel``);
  - non-inferiority "A >= B - d": the two-sided paired t-test of ``-d`` (``ttest_rel(A + d, B)``),
    i.e. the 95% interval's lower end above ``-d`` (the CONSORT convention);
  - equivalence "|A - B| < d": two one-sided tests (``statsmodels ... ttost_paired``);
  - trend: the per-seed least-squares slope of top-1 on log2(pretraining videos), tested as a
    superiority of the slopes over 0 (``vmae.report.claims``).
- Beside each test: the sign-flip permutation p-value of the same hypothesis
  (``scipy.stats.permutation_test``), which assumes no normality, only differences symmetric about
  the null value. Exact (all ``2**n`` sign patterns) up to ``EXACT_SIGN_FLIP_SEEDS`` seeds, above it
  Monte Carlo with ``SIGN_FLIP_RESAMPLES`` patterns from a fixed generator (the same p on every
  run). It cannot go below ``2 / 2**n``: the floor that sets the fewest seeds a level can decide.
- The rule's p-value of a row is the larger of the two (``TestResult.rule_p``): a row is decided
  at a level only when both tests reject there, so no verdict rests on normality alone. The level
  each row is tested at comes from the graphical procedure over all claims (vmae.report.procedure).
- Power is that of the rule as it decides: both tests at the row's level, simulated on normal
  differences at a planning SD (``rule_power``; ``minimum_detectable_effect`` and
  ``seeds_needed`` search it), never a t-test formula alone.
- ``null_rejection_rate``: how often the rule rejects a true null whose differences have the shape
  of a row's own (centred and resampled): the check a reader runs when the differences look skewed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import ttost_paired

ALPHA = 0.05  # the family-wise error rate of all verdicts together (vmae.report.procedure passes it on)
CONFIDENCE = 0.95  # of every interval
POWER = 0.80  # of the minimum detectable effect and of the seeds a claim needs
MIN_SEEDS = 6  # fewer paired seeds never give a verdict (the sign-flip p cannot reach 0.05 below 6)
MAX_PLANNED_SEEDS = 1000  # seeds_needed stops counting here (it returns one more)
SIMULATED_MAX_SEEDS = 200  # above this the sign-flip floor is far below any level: seeds_needed walks the t-test
INTERVAL = "Student t"  # how the 95% *_ci_low / *_ci_high columns are computed (README, captions)
EXACT_SIGN_FLIP_SEEDS = 16  # up to here the sign-flip p is exact (2**16 patterns: 0.25 s); above, Monte Carlo
SIGN_FLIP_RESAMPLES = 50_000  # Monte-Carlo patterns above it (p's standard error at 0.05: 0.001)
SIGN_FLIP_SEED = 20_221_206  # the Monte-Carlo generator's fixed seed: the same p on every run
PLANNING_CONFIDENCE = 0.80  # the one-sided upper confidence bound of a pilot's SD that seeds are planned from
SIMULATED_STUDIES = 2000  # draws of a power simulation (power's standard error at 0.8: 0.009)
SIMULATION_EXACT_SEEDS = 12  # simulations enumerate sign patterns up to here, Monte Carlo above
SIMULATION_RESAMPLES = 4000  # ... with this many patterns a draw

SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, TREND = "superiority", "non-inferiority", "equivalence", "trend"
TESTS = (SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, TREND)
HOLDS, NON_INFERIOR, EQUIVALENT, REVERSED, INCONCLUSIVE = (
    "holds", "non-inferior", "equivalent", "reversed", "inconclusive")
NOT_TESTED_PREMISE, NOT_TESTED_GATE, NOT_REACHED = "not tested: premise", "not tested: gate", "not reached"
VERDICTS = (HOLDS, NON_INFERIOR, EQUIVALENT, REVERSED, INCONCLUSIVE, NOT_REACHED, NOT_TESTED_PREMISE,
            NOT_TESTED_GATE)
SUCCESS = {SUPERIORITY: HOLDS, TREND: HOLDS, NON_INFERIORITY: NON_INFERIOR, EQUIVALENCE: EQUIVALENT}
CAN_REVERSE = (SUPERIORITY, NON_INFERIORITY, TREND)  # two-sided tests; equivalence has no other side


@dataclass(frozen=True)
class MeanInterval:
    """Mean of ``n`` values with its 95% t-interval (NaN bounds for one value) and std (ddof=1)."""

    n: int
    mean: float
    std: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedDifference:
    """The paired differences A - B over ``seeds``: mean, sd, 95% t-interval and the seeds A won."""

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    sd: float  # of the differences (ddof=1; NaN below 2 seeds)
    low: float
    high: float
    wins: int  # seeds where A scored above B
    ties: int

    @property
    def n(self) -> int:
        return len(self.seeds)

    def win_interval(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of the share of seeds A wins (NaN without seeds)."""
        if not self.n:
            return math.nan, math.nan
        low, high = proportion_confint(self.wins, self.n, alpha=1 - CONFIDENCE, method="beta")
        return float(low), float(high)


@dataclass(frozen=True)
class TestResult:
    """A claim's test on one row: its p-value, the sign-flip permutation p of the same hypothesis,
    and the side its estimate lies on (+1: towards the claim, -1: against it)."""

    p_value: float
    sign_flip_p: float
    side: int

    @property
    def rule_p(self) -> float:
        """The p-value the rule decides with: both tests must reject, so the larger of the two."""
        return max(self.p_value, self.sign_flip_p)


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision notes on near-equal values
        return function(*args, **kwargs)


def _spread(values: np.ndarray, resolution: float = 0.0) -> bool:
    """Whether ``values`` differ by at least half the ``resolution`` of what they measure (one test
    video of top-1), so that floats equal in every decimal a score can have count as equal."""
    return len(values) >= 2 and float(np.ptp(values)) > max(resolution / 2, 1e-9 * float(np.abs(values).max()))


def mean_interval(values: Sequence[float], resolution: float = 0.0) -> MeanInterval:
    """The mean of ``values`` (one per seed) with its 95% t-interval (a point for equal values)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval of no values")
    mean = float(x.mean())
    if x.size < 2:
        return MeanInterval(1, mean, math.nan, math.nan, math.nan)
    if not _spread(x, resolution):
        return MeanInterval(int(x.size), mean, 0.0, mean, mean)
    ci = _quiet(stats.ttest_1samp, x, 0.0).confidence_interval(CONFIDENCE)
    return MeanInterval(int(x.size), mean, float(x.std(ddof=1)), float(ci.low), float(ci.high))


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], resolution: float = 0.0) -> PairedDifference:
    """A - B paired by seed (seed -> top-1) over the seeds both arms ran; differences that do not
    differ by half a ``resolution`` (one test video) have no spread."""
    seeds = tuple(sorted(set(a) & set(b)))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    if not seeds:
        return PairedDifference((), (), math.nan, math.nan, math.nan, math.nan, 0, 0)
    interval = mean_interval(d, resolution)
    return PairedDifference(seeds, tuple(d.tolist()), interval.mean, interval.std, interval.low, interval.high,
                            int((d > 0).sum()), int((d == 0).sum()))


# --------------------------------------------------------------------------- the sign-flip test


def sign_flip_p(values: Sequence[float], alternative: str = "two-sided") -> float:
    """Sign-flip permutation p-value of mean 0 (``scipy.stats.permutation_test``): exact up to
    ``EXACT_SIGN_FLIP_SEEDS`` values, Monte Carlo from a fixed generator above."""
    x = np.asarray(values, dtype=float)
    exact = x.size <= EXACT_SIGN_FLIP_SEEDS
    result = stats.permutation_test(
        (x,), np.mean, permutation_type="samples", alternative=alternative,
        n_resamples=np.inf if exact else SIGN_FLIP_RESAMPLES,
        rng=None if exact else np.random.default_rng(SIGN_FLIP_SEED))
    return float(result.pvalue)


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


# --------------------------------------------------------------------------- a claim's test


def test(differences: Sequence[float], kind: str, margin: float = 0.0, resolution: float = 0.0) -> TestResult:
    """The claim's test (``kind``, one of ``TESTS``) on paired differences A - B; NaN p-values below
    2 seeds or without spread (differences within half a ``resolution`` of each other)."""
    d = np.asarray(differences, dtype=float)
    if kind not in TESTS:
        raise ValueError(f"test {kind!r}: expected one of {list(TESTS)}")
    if np.isnan(d).any():
        raise ValueError(f"paired differences {d.tolist()}: a top-1 is NaN (a run without a score)")
    if not _spread(d, resolution):
        side = int(np.sign(d.mean() + (margin if kind == NON_INFERIORITY else 0.0))) if d.size else 0
        return TestResult(math.nan, math.nan, side)
    if kind == EQUIVALENCE:
        p = float(_quiet(ttost_paired, d, np.zeros_like(d), -margin, margin)[0])
        flips = max(sign_flip_p(d + margin, "greater"), sign_flip_p(d - margin, "less"))
        return TestResult(p, flips, 1 if abs(d.mean()) < margin else -1)
    shift = margin if kind == NON_INFERIORITY else 0.0
    shifted = d + shift  # A + d - B for non-inferiority
    p = float(_quiet(stats.ttest_rel, shifted, np.zeros_like(shifted)).pvalue)
    return TestResult(p, sign_flip_p(shifted, "two-sided"), 1 if shifted.mean() > 0 else -1)


def rejects(result: TestResult, level: float, n_seeds: int) -> bool:
    """Whether the rule rejects a row's null at ``level``: both p-values below it, at least
    ``MIN_SEEDS`` seeds."""
    return n_seeds >= MIN_SEEDS and result.rule_p < level


def verdict(kind: str, rejected: bool, side: int) -> str:
    """A tested row's verdict: holds / non-inferior / equivalent as the test is worded when its null
    was rejected towards the claim, reversed when a two-sided test rejected on the other side (A
    below B, below B - d, or a falling trend), inconclusive otherwise."""
    if not rejected:
        return INCONCLUSIVE
    if side > 0:
        return SUCCESS[kind]
    return REVERSED if kind in CAN_REVERSE else INCONCLUSIVE


def fewest_seeds(level: float) -> int:
    """The fewest paired seeds at which a verdict is possible at ``level``: ``MIN_SEEDS``, and enough
    for the exact sign-flip p-value (at least ``2 / 2**n``) to fall below it."""
    if not level > 0:
        return math.inf  # type: ignore[return-value]
    return max(MIN_SEEDS, math.floor(math.log2(2 / level)) + 1)


# --------------------------------------------------------------------------- power of the rule


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
    side = -1 if kind in (SUPERIORITY, TREND) and effect < 0 else 1  # the sign the true effect has
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

    - superiority / trend: the smallest true |A - B| (or slope) it finds;
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
