"""Statistics over seeds (vmae.report.stats): intervals, paired differences, P(A > B), Holm, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vmae.report import stats

T_975_DF2 = 4.3026527  # Student t 97.5% quantile, 2 degrees of freedom
T_975_DF1 = 12.7062047


def test_mean_interval_is_the_student_t_interval():
    two = stats.mean_interval([60.0, 70.0])
    assert (two.n, two.mean, two.std) == (2, 65.0, pytest.approx(math.sqrt(50.0)))
    assert (two.low, two.high) == (pytest.approx(65 - T_975_DF1 * 5), pytest.approx(65 + T_975_DF1 * 5))
    three = stats.mean_interval([10.0, 20.0, 30.0])
    half_width = T_975_DF2 * 10 / math.sqrt(3)
    assert (three.low, three.high) == (pytest.approx(20 - half_width), pytest.approx(20 + half_width))


def test_one_value_has_no_interval_and_equal_values_a_point():
    one = stats.mean_interval([42.0])
    assert one.mean == 42.0 and math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.std)
    flat = stats.mean_interval([5.0, 5.0, 5.0])
    assert (flat.low, flat.high, flat.std) == (5.0, 5.0, 0.0)
    with pytest.raises(ValueError):
        stats.mean_interval([])


def test_t_interval_covers_about_95_percent_at_three_seeds_where_the_percentile_bootstrap_does_not():
    """Why the tables use t-intervals: at n = 3 the percentile bootstrap's interval lies inside the
    sample's range, so it covers the true mean far less often than 95%."""
    rng = np.random.default_rng(0)
    samples = rng.normal(50.0, 10.0, size=(800, 3))
    t_hits = sum(iv.low <= 50.0 <= iv.high for iv in map(stats.mean_interval, samples))
    # the best a percentile bootstrap can do: its interval never leaves [min, max] of the sample
    range_hits = int(((samples.min(axis=1) <= 50.0) & (50.0 <= samples.max(axis=1))).sum())
    assert 0.93 <= t_hits / 800 <= 0.97
    assert range_hits / 800 < 0.79  # 1 - 2 * 0.5**3 = 0.75 in theory


def test_paired_difference_pairs_by_seed_and_ignores_unpaired_seeds():
    a = {0: 60.0, 1: 70.0, 2: 65.0, 7: 99.0}  # seed 7 has no partner
    b = {0: 50.0, 1: 55.0, 2: 58.0}
    d = stats.paired_difference(a, b)  # differences 10, 15, 7
    sd = math.sqrt(((10 - 32 / 3) ** 2 + (15 - 32 / 3) ** 2 + (7 - 32 / 3) ** 2) / 2)
    assert d.seeds == (0, 1, 2) and d.n == 3
    assert d.mean == pytest.approx(32 / 3)
    assert d.low == pytest.approx(32 / 3 - T_975_DF2 * sd / math.sqrt(3))
    assert d.high == pytest.approx(32 / 3 + T_975_DF2 * sd / math.sqrt(3))
    assert d.p_value == pytest.approx(0.04468, abs=2e-4)  # t = 4.572, 2 df, two-sided
    assert d.prob_improvement == 1.0


def test_pairing_is_what_separates_arms_with_a_large_seed_effect():
    """The seed moves both arms together: unpaired the arms overlap, paired A is always ahead."""
    seed_effect = {0: 0.0, 1: 30.0, 2: 10.0, 3: 20.0}
    a = {s: 40.0 + e + 2.0 + 0.1 * s for s, e in seed_effect.items()}
    b = {s: 40.0 + e for s, e in seed_effect.items()}
    d = stats.paired_difference(a, b)
    assert d.low > 0 and d.p_value < 0.01
    assert 0.5 < d.prob_improvement < 0.7  # over random pairs of seeds A wins only a little more often


def test_probability_of_improvement_counts_ties_half():
    assert stats.probability_of_improvement([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert stats.probability_of_improvement([3.0], [1.0, 2.0, 3.0]) == pytest.approx(5 / 6)
    assert math.isnan(stats.probability_of_improvement([], [1.0]))


def test_holm_adjusts_step_down_and_skips_missing():
    adjusted = stats.holm([0.01, 0.04, 0.03, math.nan])
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert adjusted[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])


@pytest.mark.parametrize("diff, p, n, expected", [
    (5.0, 0.01, 5, "holds"),
    (-5.0, 0.01, 5, "reversed"),
    (5.0, 0.2, 5, "inconclusive"),
    (5.0, 0.0, 2, "inconclusive"),  # below MIN_SEEDS
    (5.0, math.nan, 0, "inconclusive"),
    (5.0, 0.05, 5, "inconclusive"),  # the threshold is strict
])
def test_verdict_rule(diff, p, n, expected):
    assert stats.verdict(diff, p, n) == expected
