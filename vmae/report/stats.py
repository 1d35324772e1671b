"""Statistics over training seeds: 95% intervals, paired differences, P(A > B), Holm, verdicts.

The unit of replication is the training seed: one seed fixes an arm's pretraining, its fine-tuning
order and its head init, and every arm of a study runs the same seeds, so two arms are compared by
their paired differences ``d_s = A_s - B_s`` over the seeds both ran.

- Interval of a mean (a table row) and of a mean paired difference: Student's t-interval
  (``scipy.stats.ttest_1samp(...).confidence_interval``). At 3-10 seeds a percentile bootstrap
  covers far less than its nominal 95% (it cannot reach beyond the observed values); the
  t-interval is exact for normal data and close for the bounded accuracies seen here.
- P(A > B): the probability of improvement of rliable (Agarwal et al., 2021): the chance that a
  random seed of A scores above a random seed of B, ties counting half, i.e. the Mann-Whitney
  U statistic over ``n_A * n_B`` (``scipy.stats.mannwhitneyu``).
- Verdicts (the rule in the README, fixed before any run): a claim "A > B" **holds** when the
  two-sided paired t-test's p-value, Holm-adjusted over all claims in the table
  (``statsmodels.stats.multitest.multipletests``), is below ``ALPHA`` and the mean difference is
  positive; it is **reversed** when the adjusted p-value is below ``ALPHA`` and the difference is
  negative; it is **inconclusive** otherwise, and always with fewer than ``MIN_SEEDS`` paired seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05  # the verdicts' family-wise error rate
CONFIDENCE = 0.95  # of every interval
MIN_SEEDS = 3  # fewer paired seeds never give a verdict
HOLDS, REVERSED, INCONCLUSIVE = "holds", "reversed", "inconclusive"
VERDICTS = (HOLDS, REVERSED, INCONCLUSIVE)
INTERVAL = "Student t"  # how the 95% *_ci_low / *_ci_high columns are computed (README, captions)


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
    """Mean of the paired differences A - B over ``seeds``, with its t-interval and test."""

    seeds: tuple[int, ...]
    mean: float
    low: float
    high: float
    p_value: float  # two-sided paired t-test of mean difference 0 (NaN below 2 seeds)
    prob_improvement: float  # P(A > B) over the two arms' seeds, ties half

    @property
    def n(self) -> int:
        return len(self.seeds)


def _t_test(values: np.ndarray) -> tuple[float, float, float]:
    """(ci low, ci high, two-sided p) of a one-sample t-test of mean 0; exact for zero spread."""
    mean = float(values.mean())
    if len(values) < 2:
        return math.nan, math.nan, math.nan
    if np.ptp(values) == 0:  # no spread: the interval is the point, p is 1 at 0 and 0 elsewhere
        return mean, mean, 1.0 if mean == 0 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision notes on near-equal values
        result = stats.ttest_1samp(values, 0.0)
    ci = result.confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high), float(result.pvalue)


def mean_interval(values: Sequence[float]) -> MeanInterval:
    """The mean of ``values`` (one per seed) with its 95% t-interval."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval of no values")
    low, high, _ = _t_test(x)
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return MeanInterval(n=int(x.size), mean=float(x.mean()), std=std, low=low, high=high)


def probability_of_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """P(X > Y) + P(X = Y) / 2 for X a seed of A and Y a seed of B (rliable's definition)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(stats.mannwhitneyu(x, y).statistic) / (x.size * y.size)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference:
    """A - B paired by seed (seed -> top-1) over the seeds both arms ran."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        return PairedDifference((), math.nan, math.nan, math.nan, math.nan, math.nan)
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    low, high, p = _t_test(d)
    return PairedDifference(seeds, float(d.mean()), low, high, p,
                            probability_of_improvement([a[s] for s in seeds], [b[s] for s in seeds]))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (step-down, family-wise error); NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    known = ~np.isnan(p)
    if known.any():
        adjusted[known] = multipletests(p[known], alpha=ALPHA, method="holm")[1]
    return adjusted


def verdict(mean_difference: float, adjusted_p: float, n_seeds: int) -> str:
    """holds / reversed / inconclusive of a claim "A > B" (the rule in this module's docstring)."""
    if n_seeds < MIN_SEEDS or math.isnan(adjusted_p) or not adjusted_p < ALPHA:
        return INCONCLUSIVE
    return HOLDS if mean_difference > 0 else REVERSED
