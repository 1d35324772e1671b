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
    superiority of the slopes over 0 (``vmae.report.claims``);
  - interaction: the per-seed difference of paired differences (A - B at a study's largest level
    minus A - B at its smallest, e.g. pretraining length), tested as a superiority over 0.
- Beside each test: the sign-flip permutation p-value of the same hypothesis
  (``scipy.stats.permutation_test``), which assumes no normality, only differences symmetric about
  the null value. Exact (all ``2**n`` sign patterns) up to ``EXACT_SIGN_FLIP_SEEDS`` seeds, above it
  Monte Carlo with ``SIGN_FLIP_RESAMPLES`` patterns from a fixed generator (the same p on every
  run). It cannot go below ``2 / 2**n``: the floor that sets the fewest seeds a level can decide.
- The rule's p-value of a row is the larger of the two (``TestResult.rule_p``): a row is decided
  at a level only when both tests reject there, so no verdict rests on normality alone. The level
  each row is tested at comes from the graphical procedure over all claims (vmae.report.procedure).
- Power, the minimum detectable effect and the seeds a claim needs are those of the rule as it
  decides, simulated (vmae.report.rule_power).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import ttost_paired

ALPHA = 0.05  # the family-wise error rate of all verdicts together (vmae.report.procedure passes it on)
CONFIDENCE = 0.95  # of every interval
MIN_SEEDS = 6  # fewer paired seeds never give a verdict (the sign-flip p cannot reach 0.05 below 6)
INTERVAL = "Student t"  # how the 95% *_ci_low / *_ci_high columns are computed (README, captions)
EXACT_SIGN_FLIP_SEEDS = 16  # up to here the sign-flip p is exact (2**16 patterns: 0.25 s); above, Monte Carlo
SIGN_FLIP_RESAMPLES = 50_000  # Monte-Carlo patterns above it (p's standard error at 0.05: 0.001)
SIGN_FLIP_SEED = 20_221_206  # the Monte-Carlo generator's fixed seed: the same p on every run

SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, TREND, INTERACTION = (
    "superiority", "non-inferiority", "equivalence", "trend", "interaction")
TESTS = (SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, TREND, INTERACTION)
HOLDS, NON_INFERIOR, EQUIVALENT, REVERSED, INCONCLUSIVE = (
    "holds", "non-inferior", "equivalent", "reversed", "inconclusive")
NOT_TESTED_PREMISE, NOT_TESTED_GATE, NOT_REACHED = "not tested: premise", "not tested: gate", "not reached"
VERDICTS = (HOLDS, NON_INFERIOR, EQUIVALENT, REVERSED, INCONCLUSIVE, NOT_REACHED, NOT_TESTED_PREMISE,
            NOT_TESTED_GATE)
SUCCESS = {SUPERIORITY: HOLDS, TREND: HOLDS, INTERACTION: HOLDS, NON_INFERIORITY: NON_INFERIOR,
           EQUIVALENCE: EQUIVALENT}
CAN_REVERSE = (SUPERIORITY, NON_INFERIORITY, TREND, INTERACTION)  # two-sided; equivalence has no other side


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
