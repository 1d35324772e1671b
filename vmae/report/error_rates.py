"""The rule's family-wise error rate, measured by simulating whole studies (README: "Error rates").

``family_error_rate`` draws paired differences for every row of the paper's claims under a true
null (superiority and trend: mean 0; non-inferiority: -margin, the boundary; equivalence: +margin,
the boundary), normal or skewed (a centred exponential, the shape a fine-tuning that sometimes
fails to take off gives), optionally with a true gate (VideoMAE far above scratch), computes each
row's rule p-value as ``vmae.report.stats.test`` does and runs the graph
(``vmae.report.procedure``) over them. A family-wise error is any rejected true null.
"""

from __future__ import annotations

import numpy as np

from vmae.report import procedure, rule_power, stats
from vmae.report.studies import CLAIMS, CONTROL, GATE, PAPER, RULE_EDGES, RULE_INITIAL

DISTRIBUTIONS = ("normal", "skewed")
ROWS = {"in_domain_ge_out_of_domain": 2}  # rows a claim has in the default config (its targets); others 1


def _null_mean(test: str, margin: float) -> float:
    return {stats.NON_INFERIORITY: -margin, stats.EQUIVALENCE: margin}.get(test, 0.0)


def _noise(rng: np.random.Generator, distribution: str, shape: tuple[int, int], sd: float) -> np.ndarray:
    if distribution == "normal":
        return sd * rng.standard_normal(shape)
    if distribution == "skewed":
        return sd * (rng.exponential(1.0, shape) - 1.0)  # mean 0, sd ``sd``, skewness 2
    raise ValueError(f"distribution {distribution!r}: expected one of {list(DISTRIBUTIONS)}")


def family_error_rate(distribution: str = "normal", gate_effect: float = 0.0, main_seeds: int = 6,
                      side_seeds: int = 8, sd: float = 4.0, draws: int = 2000, seed: int = 0) -> float:
    """The share of ``draws`` simulated runs of every claim in which the rule rejects at least one
    true null. ``gate_effect`` > 0 makes the gate's alternative true (its rejection is no error);
    the data-efficiency study runs ``main_seeds``, the side studies ``side_seeds``."""
    rng = np.random.default_rng(seed)
    rule = [c for c in CLAIMS if c.role != CONTROL and c.family == PAPER]
    p_values: dict[str, np.ndarray] = {}
    true_null: dict[str, bool] = {}
    for claim in rule:
        n = main_seeds if claim.study == "data_efficiency" else side_seeds
        effect = gate_effect if claim.role == GATE else 0.0
        true_null[claim.key] = not (claim.role == GATE and gate_effect > 0)
        columns = []
        for _ in range(ROWS.get(claim.key, 1)):
            d = _null_mean(claim.test, claim.margin) + effect + _noise(rng, distribution, (draws, n), sd)
            columns.append(rule_power.rule_p_batch(d, claim.test, claim.margin))
        p_values[claim.key] = np.stack(columns, axis=1)
    graph = procedure.Graph.build([c.key for c in rule], RULE_INITIAL, RULE_EDGES)
    errors = 0
    for draw in range(draws):
        tests = {key: [procedure.RowTest(float(p), True) for p in p_values[key][draw]] for key in p_values}
        result = procedure.run(graph, stats.ALPHA, tests)
        errors += any(outcome.rejected and true_null[key] for (key, _), outcome in result.rows.items())
    return errors / draws
