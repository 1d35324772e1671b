"""The graphical multiple-testing procedure that gives every claim its level (Bretz et al. 2009).

The family-wise error rate over every claim's verdict is held at ``stats.ALPHA`` by a graph written
down before any run (``vmae.report.studies.RULE_GRAPH``): each claim is a node holding a share of
alpha (at first the gate holds all of it) and edges that say where that share goes once the claim
is decided. A claim is decided when every one of its rows (one per target, say) rejects its null
under Holm at the claim's level, each row by the rule's p-value (both the t-test's and the
sign-flip test's below the level; ``stats.TestResult.rule_p``); its share then flows along its
edges (``Graph.reject``: Bretz et al.'s update of weights and edges), and the claims that receive
it are tested again at their higher level, until no claim is decided. A claim that never receives
alpha is "not reached" ("not tested: gate" while the gate is undecided).

Why this keeps the error rate at alpha: while no true null has been rejected, a claim holding a
true null is never decided, so it never passes its share on; the levels the others get are then at
most those of the graph in which exactly the all-false claims are removed, whose weights sum to at
most 1, and Holm within each claim holds its own share (a union bound). Rejecting a two-sided null
on the "reversed" side is a rejection too, and passes alpha on.

Nodes with no rows (claims whose arms a config does not run, or whose premise fails on every row)
are removed before testing as the graph says (their share passed on): that is fixed by the config
before any run. The gate is never removed: a run without its arms decides nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Edge:
    """Where a decided claim's share of alpha goes: ``weight`` of it to ``target``. ``recycle``
    edges (a finished study's share to the other studies) are not waits: a claim does not wait on
    the claims that recycle into it."""

    source: str
    target: str
    weight: float
    reason: str = ""
    recycle: bool = False


@dataclass
class Graph:
    """Weights (shares of alpha) on nodes and transition weights on edges; ``reject`` removes a node
    and passes its share on (Bretz, Maurer, Brannath, Posch 2009, Algorithm 1)."""

    weights: dict[str, float]
    transitions: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def build(cls, nodes: Sequence[str], initial: Mapping[str, float], edges: Iterable[Edge]) -> "Graph":
        weights = {node: float(initial.get(node, 0.0)) for node in nodes}
        transitions = {node: {} for node in nodes}
        for edge in edges:
            transitions[edge.source][edge.target] = edge.weight
        return cls(weights, transitions)

    def copy(self) -> "Graph":
        return Graph(dict(self.weights), {k: dict(v) for k, v in self.transitions.items()})

    def reject(self, node: str) -> None:
        """Remove ``node``; its weight flows along its edges, and edges through it are rewired."""
        g = self.transitions
        rest = [j for j in self.weights if j != node]
        for j in rest:
            self.weights[j] += self.weights[node] * g[node].get(j, 0.0)
        rewired = {}
        for j in rest:
            row = {}
            for k in rest:
                if k == j:
                    continue
                denominator = 1.0 - g[j].get(node, 0.0) * g[node].get(j, 0.0)
                value = (g[j].get(k, 0.0) + g[j].get(node, 0.0) * g[node].get(k, 0.0)) / denominator \
                    if denominator > 1e-12 else 0.0
                if value > 0:
                    row[k] = value
            rewired[j] = row
        del self.weights[node]
        self.transitions = rewired


@dataclass(frozen=True)
class RowTest:
    """One row of a claim as the procedure sees it: the rule's p-value and whether it may reject
    (enough seeds and a spread; ``stats.rejects``)."""

    p: float
    testable: bool


@dataclass(frozen=True)
class Outcome:
    """A row's result: the level it was last tested at (Holm's step within its claim) and whether
    its null was rejected there."""

    level: float
    rejected: bool


def holm_at(rows: Sequence[RowTest], level: float) -> list[Outcome]:
    """Holm's step-down over one claim's rows at ``level``: the j-th smallest p (of k) is compared
    with level / (k - j), strictly below; the first that fails stops it, and every row left is
    tested at that step's level. Rows that cannot reject never do (they still count in k)."""
    k = len(rows)
    order = sorted(range(k), key=lambda i: rows[i].p if rows[i].testable else np.inf)
    outcomes: list[Outcome] = [Outcome(0.0, False)] * k
    for step, i in enumerate(order):
        step_level = level / (k - step)
        if rows[i].testable and rows[i].p < step_level:
            outcomes[i] = Outcome(step_level, True)
            continue
        for j in order[step:]:
            outcomes[j] = Outcome(step_level, False)
        break
    return outcomes


def ancestors(node: str, edges: Iterable[Edge]) -> set[str]:
    """The claims ``node`` waits on: every node with a path of non-recycle edges to it."""
    into: dict[str, set[str]] = {}
    for edge in edges:
        if not edge.recycle:
            into.setdefault(edge.target, set()).add(edge.source)
    found: set[str] = set()
    todo = list(into.get(node, ()))
    while todo:
        source = todo.pop()
        if source not in found:
            found.add(source)
            todo += into.get(source, ())
    return found


@dataclass(frozen=True)
class Result:
    """The procedure's outcome: each row's ``Outcome`` by (node, row index), the nodes decided, and
    each node's level (where it was decided, else its share of alpha at the end; 0: never reached)."""

    rows: dict[tuple[str, int], Outcome]
    decided: frozenset[str]
    levels: dict[str, float]


def run(graph: Graph, alpha: float, tests: Mapping[str, Sequence[RowTest]], removed: Iterable[str] = (),
        assumed: Iterable[str] = ()) -> Result:
    """Test every node of ``tests`` (node -> its rows) under ``graph`` at family-wise ``alpha``.

    ``removed``: nodes out of the design (their share passed on before testing). ``assumed``:
    nodes outside this table taken as decided (a study's own table assumes the claims it waits on
    were decided). Every other node of the graph without rows holds its share and is never decided.
    """
    graph = graph.copy()
    for node in [*removed, *assumed]:
        if node in graph.weights:
            graph.reject(node)
    decided: dict[str, float] = {}
    outcomes: dict[str, list[Outcome]] = {}
    progress = True
    while progress:
        progress = False
        for node, rows in tests.items():
            if node in decided or node not in graph.weights:
                continue
            outcomes[node] = holm_at(rows, alpha * graph.weights[node])
            if rows and all(o.rejected for o in outcomes[node]):
                decided[node] = alpha * graph.weights[node]
                graph.reject(node)
                progress = True
                break
    levels = {node: decided.get(node, alpha * graph.weights.get(node, 0.0)) for node in tests}
    flat = {(node, i): o for node, found in outcomes.items() for i, o in enumerate(found)}
    return Result(flat, frozenset(decided), levels)


def planning_level(node: str, graph: Graph, alpha: float, edges: Iterable[Edge], absent: Iterable[str] = ()) -> float:
    """The level ``node`` is tested at once every claim it waits on (``ancestors``) is decided and
    nothing else: the level its seeds are planned for. ``absent``: nodes out of the design."""
    graph = graph.copy()
    for other in [*absent, *sorted(ancestors(node, edges))]:
        if other in graph.weights and other != node:
            graph.reject(other)
    return alpha * graph.weights.get(node, 0.0)
