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
- Beside each test: the exact sign-flip permutation p-value of the same hypothesis
  (``scipy.stats.permutation_test``), which assumes no normality; it cannot go below
  ``2 / 2**n``, so from 6 seeds it can reach 0.05. And the paired win rate: A beat B on k of n
  seeds, with its Clopper-Pearson interval (``statsmodels ... proportion_confint``).
- Power (``statsmodels.stats.power.TTestPower``): the minimum detectable effect of a row at its
  seeds and the seeds a claim needs for 80% power at its smallest effect of interest, each at the
  row's Bonferroni level within its family (``alpha``).
- Verdicts (the rule in the README, fixed before any run; ``verdict``): the test's t-test p-value
  AND its sign-flip p-value, each Holm-adjusted within the claim's family (vmae.report.claims),
  below the family's alpha give **holds** / **non-inferior** / **equivalent** as the test is
  worded, or **reversed** where the superiority or non-inferiority test rejects on the other side
  (A below B, or below B - d); otherwise **inconclusive**, and always with fewer than ``MIN_SEEDS``
  paired seeds or with differences of no spread (there the t-test says nothing). Why both: under a
  skewed distribution of differences the t-test alone rejects a true null about twice as often as
  it should at 3-8 seeds (tests/test_stats.py measures it); the sign-flip test assumes only that the
  differences are symmetric under the null, and requiring it too brings that rate down at 6 seeds.
  So no verdict rests on normality alone, and ``MIN_SEEDS`` is 6, the fewest at which the
  sign-flip test can reach 0.05.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import ttost_paired

ALPHA = 0.05  # the family-wise error rate of all verdicts together (vmae.report.claims splits it)
CONFIDENCE = 0.95  # of every interval
POWER = 0.80  # of the minimum detectable effect and of the seeds a claim needs
MIN_SEEDS = 6  # fewer paired seeds never give a verdict (the sign-flip p cannot reach 0.05 below 6)
MAX_PLANNED_SEEDS = 10_000  # seeds_needed stops counting here
INTERVAL = "Student t"  # how the 95% *_ci_low / *_ci_high columns are computed (README, captions)

SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, TREND = "superiority", "non-inferiority", "equivalence", "trend"
TESTS = (SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, TREND)
HOLDS, NON_INFERIOR, EQUIVALENT, REVERSED, INCONCLUSIVE = (
    "holds", "non-inferior", "equivalent", "reversed", "inconclusive")
NOT_TESTED_PREMISE, NOT_TESTED_GATE = "not tested: premise", "not tested: gate"
VERDICTS = (HOLDS, NON_INFERIOR, EQUIVALENT, REVERSED, INCONCLUSIVE, NOT_TESTED_PREMISE, NOT_TESTED_GATE)
SUCCESS = {SUPERIORITY: HOLDS, TREND: HOLDS, NON_INFERIORITY: NON_INFERIOR, EQUIVALENCE: EQUIVALENT}


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


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision notes on near-equal values
        return function(*args, **kwargs)


def _spread(values: np.ndarray) -> bool:
    return len(values) >= 2 and float(np.ptp(values)) > 0


def mean_interval(values: Sequence[float]) -> MeanInterval:
    """The mean of ``values`` (one per seed) with its 95% t-interval (a point for equal values)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval of no values")
    mean = float(x.mean())
    if x.size < 2:
        return MeanInterval(1, mean, math.nan, math.nan, math.nan)
    if not _spread(x):
        return MeanInterval(int(x.size), mean, 0.0, mean, mean)
    ci = _quiet(stats.ttest_1samp, x, 0.0).confidence_interval(CONFIDENCE)
    return MeanInterval(int(x.size), mean, float(x.std(ddof=1)), float(ci.low), float(ci.high))


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference:
    """A - B paired by seed (seed -> top-1) over the seeds both arms ran."""
    seeds = tuple(sorted(set(a) & set(b)))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    if not seeds:
        return PairedDifference((), (), math.nan, math.nan, math.nan, math.nan, 0, 0)
    interval = mean_interval(d)
    return PairedDifference(seeds, tuple(d.tolist()), interval.mean, interval.std, interval.low, interval.high,
                            int((d > 0).sum()), int((d == 0).sum()))


def _sign_flip_p(values: np.ndarray, alternative: str) -> float:
    """Exact sign-flip permutation p-value of mean 0 (every one of the 2**n sign patterns)."""
    result = stats.permutation_test((values,), np.mean, permutation_type="samples", alternative=alternative,
                                    n_resamples=np.inf)
    return float(result.pvalue)


def test(differences: Sequence[float], kind: str, margin: float = 0.0) -> TestResult:
    """The claim's test (``kind``, one of ``TESTS``) on paired differences A - B; NaN p-values below
    2 seeds or without spread."""
    d = np.asarray(differences, dtype=float)
    if kind not in TESTS:
        raise ValueError(f"test {kind!r}: expected one of {list(TESTS)}")
    if not _spread(d):
        side = int(np.sign(d.mean() + (margin if kind == NON_INFERIORITY else 0.0))) if d.size else 0
        return TestResult(math.nan, math.nan, side)
    if kind == EQUIVALENCE:
        p = float(_quiet(ttost_paired, d, np.zeros_like(d), -margin, margin)[0])
        flips = max(_sign_flip_p(d + margin, "greater"), _sign_flip_p(d - margin, "less"))
        return TestResult(p, flips, 1 if abs(d.mean()) < margin else -1)
    shift = margin if kind == NON_INFERIORITY else 0.0
    shifted = d + shift  # A + d - B for non-inferiority
    p = float(_quiet(stats.ttest_rel, shifted, np.zeros_like(shifted)).pvalue)
    return TestResult(p, _sign_flip_p(shifted, "two-sided"), 1 if shifted.mean() > 0 else -1)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (step-down, family-wise error); NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    known = ~np.isnan(p)
    if known.any():
        adjusted[known] = multipletests(p[known], alpha=ALPHA, method="holm")[1]
    return adjusted


def verdict(kind: str, adjusted_p: float, adjusted_sign_flip_p: float, side: int, n_seeds: int,
            alpha: float = ALPHA) -> str:
    """The verdict of a claim's test (the rule in this module's docstring) at ``alpha``: both adjusted
    p-values must be below it."""
    if n_seeds < MIN_SEEDS or not (adjusted_p < alpha and adjusted_sign_flip_p < alpha):
        return INCONCLUSIVE
    if side > 0:
        return SUCCESS[kind]
    return INCONCLUSIVE if kind == EQUIVALENCE else REVERSED


def fewest_seeds(alpha: float) -> int:
    """The fewest paired seeds at which a verdict is possible at ``alpha``: ``MIN_SEEDS``, and enough
    for the exact sign-flip p-value (at least ``2 / 2**n``) to fall below ``alpha``."""
    return max(MIN_SEEDS, math.floor(math.log2(2 / alpha)) + 1)


def minimum_detectable_effect(sd: float, n_seeds: int, alpha: float, power: float = POWER) -> float:
    """The smallest true mean difference (in the differences' units) that a two-sided paired t-test
    at ``alpha`` detects with ``power`` at ``n_seeds`` seeds, given the differences' ``sd``; infinite
    below ``fewest_seeds(alpha)``, where no verdict is possible."""
    if n_seeds < 2 or not sd > 0:
        return math.nan
    if n_seeds < fewest_seeds(alpha):
        return math.inf
    effect = _quiet(TTestPower().solve_power, effect_size=None, nobs=n_seeds, alpha=alpha, power=power,
                    alternative="two-sided")
    return float(np.asarray(effect).item()) * sd


def seeds_needed(effect: float, sd: float, alpha: float, power: float = POWER, kind: str = SUPERIORITY,
                 margin: float = 0.0) -> int:
    """Paired seeds for ``power`` at a true difference ``effect`` (points) with differences of ``sd``
    (never fewer than ``fewest_seeds(alpha)``).

    Superiority and trend: a two-sided test of 0 at ``alpha``. Non-inferiority: the two-sided test
    of ``-margin`` when the true difference is ``effect`` (0: the arms equal). Equivalence: both
    one-sided tests at ``alpha`` when the true difference is ``effect``, each with power
    ``(1 + power) / 2`` (a lower bound on the two tests' joint power of ``power``).
    """
    if not sd > 0:
        return fewest_seeds(alpha)
    if kind == NON_INFERIORITY:
        distance, sides, target = effect + margin, "two-sided", power
    elif kind == EQUIVALENCE:
        distance, sides, target = margin - abs(effect), "larger", (1 + power) / 2
    else:
        distance, sides, target = abs(effect), "two-sided", power
    if not distance > 0:
        return math.inf  # type: ignore[return-value]  # no number of seeds decides it
    power_at = TTestPower().power  # rises with n: the first n that reaches the target
    n = next(n for n in range(2, MAX_PLANNED_SEEDS + 1)
             if n == MAX_PLANNED_SEEDS or _quiet(power_at, effect_size=distance / sd, nobs=n, alpha=alpha,
                                                 alternative=sides) >= target)
    return max(fewest_seeds(alpha), n)
