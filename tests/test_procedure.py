"""The graphical procedure (vmae.report.procedure) and the rule's error rates (vmae.report.error_rates):
Holm and the fixed sequence as special cases, the written graph's levels, and the family-wise error
measured by simulating whole studies."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from vmae.report import error_rates, procedure, studies
from vmae.report.procedure import Edge, Graph, RowTest


def _decided(graph: Graph, p: dict[str, float], alpha: float = 0.05) -> set[str]:
    return set(procedure.run(graph, alpha, {k: [RowTest(v, True)] for k, v in p.items()}).decided)


def test_a_complete_graph_with_equal_weights_is_holm():
    nodes = ["a", "b", "c", "d"]
    edges = [Edge(x, y, 1 / 3) for x, y in itertools.permutations(nodes, 2)]
    graph = Graph.build(nodes, dict.fromkeys(nodes, 0.25), edges)
    rng = np.random.default_rng(0)
    for _ in range(40):  # statsmodels' multipletests runs a garbage collection each call: few draws
        p = rng.uniform(0, 0.06, 4)
        holm = multipletests(p, alpha=0.05, method="holm")[0]
        assert _decided(graph, dict(zip(nodes, p))) == {n for n, r in zip(nodes, holm) if r}


def test_a_chain_is_a_fixed_sequence_and_a_rejected_node_passes_its_whole_level_on():
    graph = Graph.build(["a", "b", "c"], {"a": 1.0}, [Edge("a", "b", 1.0), Edge("b", "c", 1.0)])
    assert _decided(graph, {"a": 0.04, "b": 0.049, "c": 0.01}) == {"a", "b", "c"}
    assert _decided(graph, {"a": 0.04, "b": 0.06, "c": 0.0001}) == {"a"}  # c never gets a level
    result = procedure.run(graph, 0.05, {"a": [RowTest(0.04, True)], "b": [RowTest(0.06, True)],
                                         "c": [RowTest(0.0, True)]})
    assert result.levels == {"a": 0.05, "b": 0.05, "c": 0.0}


def test_holm_within_a_claim_and_the_claim_passes_on_only_when_every_row_is_decided():
    graph = Graph.build(["a", "b"], {"a": 1.0}, [Edge("a", "b", 1.0)])
    half = procedure.run(graph, 0.05, {"a": [RowTest(0.01, True), RowTest(0.04, True)], "b": [RowTest(0.0, True)]})
    assert [half.rows[("a", i)] for i in (0, 1)] == [procedure.Outcome(0.025, True), procedure.Outcome(0.05, True)]
    assert half.decided == {"a", "b"}
    stuck = procedure.run(graph, 0.05, {"a": [RowTest(0.01, True), RowTest(0.2, True)], "b": [RowTest(0.0, True)]})
    assert stuck.rows[("a", 0)].rejected and not stuck.rows[("a", 1)].rejected and stuck.decided == {"a"} - {"a"}
    assert stuck.levels["b"] == 0.0


def test_the_written_graph_gives_table_2_the_full_level_and_the_side_studies_their_shares():
    paper = studies.FAMILIES[studies.PAPER].keys
    graph = Graph.build(paper, studies.RULE_INITIAL, studies.RULE_EDGES)
    level = {k: procedure.planning_level(k, graph, 0.05, studies.RULE_EDGES) for k in paper}
    assert [level[k] for k in ("videomae_gt_scratch", "videomae_gt_mocov3", "videomae_gt_mocov3_linprobe")] == \
        [0.05] * 3
    assert level["mocov3_gt_scratch"] == pytest.approx(0.0325)
    assert {round(level[k], 6) for k in studies.SIDE_HEADS} == {round(0.05 * 0.35 / 5, 6)}
    assert all(sum(e.weight for e in studies.RULE_EDGES if e.source == k) <= 1 + 1e-12 for k in studies.CLAIM_KEYS)
    # nothing flows into Table 2 from a side study, so the main job's table decides it alone
    table2 = {c.key for c in studies.claims_of("data_efficiency")}
    assert not [e for e in studies.RULE_EDGES if e.target in table2 and e.source not in table2]
    # once MoCo v3 > scratch and every other side study are decided, one side study gets all of 0.05
    g = graph.copy()
    for k in ["videomae_gt_scratch", "videomae_gt_mocov3", "videomae_gt_mocov3_linprobe", "mocov3_gt_scratch",
              "tube_gt_random", "random_gt_frame", "in_domain_ge_out_of_domain", "more_data_helps",
              "videomaev2_ge_videomae"]:
        g.reject(k)
    assert g.weights["ratio_0.9_gt_0.5"] == pytest.approx(1.0)


def test_every_claim_but_the_controls_can_receive_alpha_from_its_familys_start():
    """A claim added to studies.CLAIMS without a place in its family's graph (the paper's
    RULE_EDGES, or an on-demand study's own) would never be tested."""
    for claim in studies.CLAIMS:
        if claim.role == studies.CLAIM:
            family = studies.FAMILIES[claim.family]
            graph = Graph.build(family.keys, family.initial, family.edges)
            assert procedure.planning_level(claim.key, graph, 0.05, family.edges) > 0, claim.key


def test_the_masking_regime_is_a_fixed_sequence_at_the_full_level():
    family = studies.FAMILIES[studies.REGIME]
    graph = Graph.build(family.keys, family.initial, family.edges)
    assert [procedure.planning_level(k, graph, 0.05, family.edges) for k in family.keys] == [0.05, 0.05]
    first_fails = procedure.run(graph, 0.05, {"regime_ratio_moves": [RowTest(0.2, True)],
                                              "regime_tube_moves": [RowTest(0.001, True)]})
    assert [first_fails.rows[(k, 0)].rejected for k in family.keys] == [False, False]
    assert first_fails.rows[("regime_tube_moves", 0)].level == 0.0  # never reached
    both = procedure.run(graph, 0.05, {"regime_ratio_moves": [RowTest(0.04, True)],
                                       "regime_tube_moves": [RowTest(0.04, True)]})
    assert [both.rows[(k, 0)].rejected for k in family.keys] == [True, True]


def test_the_rules_family_wise_error_under_the_global_null_is_at_most_alpha():
    """Normal differences, every claim's null true (the gate's too), the main job's 6 seeds and 8 in
    each side study: at most 0.05 (the gate's sign-flip test at 6 seeds makes it conservative); the
    same with a true gate, when every other claim gets its level."""
    assert error_rates.family_error_rate("normal", 0.0) <= 0.05
    assert error_rates.family_error_rate("normal", 15.0) <= 0.05


README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_error_rates_are_the_simulations():
    """The README quotes the measured rates ("Error rates"): each equals the simulation's at its
    seeds (2000 simulated runs, seed 0)."""
    quoted = re.findall(r"<!-- rate (\w+) gate=([\d.]+) main=(\d+) side=(\d+) -->\s*(\d+\.\d+|\d+)", README.read_text())
    assert len(quoted) == 8
    for distribution, gate, main, side, value in quoted:
        assert error_rates.family_error_rate(distribution, float(gate), int(main), int(side)) == float(value)
