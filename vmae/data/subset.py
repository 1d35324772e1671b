"""`vmae subset TRAIN_CSV --fraction F --seed S --out FILE [--pool POOL_CSV]`: a stratified, nested
pretraining set of F times the training set's size.

Each class gets its own permutation seeded by (seed, label); a subset takes the first
``max(1, round(F * n_class))`` videos of every class's permutation, so for one seed the 0.25
subset lies inside the 0.5 subset, which lies inside the full manifest. Above 1, the set is the
whole training manifest plus the first ``round((F - 1) * n_class)`` videos of every class's
permutation of ``--pool`` (unlabelled videos, e.g. a synthetic dataset's unlabelled.csv), so
1 < 2 < 4 stay nested too. Rows keep the manifests' order (training rows first).
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from vmae.data.manifest import read_manifest, write_manifest
from vmae.errors import UserError


class SubsetError(UserError, ValueError):
    """A subset cannot be drawn as asked (fraction out of range, a pool too small or missing)."""


def _by_class(rows: list[tuple[str, int]]) -> dict[int, list[int]]:
    positions: dict[int, list[int]] = defaultdict(list)
    for position, (_, label) in enumerate(rows):
        positions[label].append(position)
    return positions


def _first_of_each_class(rows: list[tuple[str, int]], counts: dict[int, int], seed: int) -> list[tuple[str, int]]:
    """The first ``counts[label]`` rows of every class's permutation seeded by (seed, label)."""
    keep: set[int] = set()
    for label, members in _by_class(rows).items():
        order = np.random.default_rng([seed, label]).permutation(len(members))
        keep.update(members[i] for i in order[:counts.get(label, 0)])
    return [row for position, row in enumerate(rows) if position in keep]


def stratified_subset(rows: list[tuple[str, int]], fraction: float, seed: int,
                      pool: list[tuple[str, int]] | None = None) -> list[tuple[str, int]]:
    """The rows of a set ``fraction`` times the size of ``rows`` (see the module docstring)."""
    if not fraction > 0:
        raise SubsetError(f"fraction={fraction}: expected a value > 0")
    per_class = {label: len(members) for label, members in _by_class(rows).items()}
    if fraction <= 1:
        return _first_of_each_class(rows, {c: max(1, round(fraction * n)) for c, n in per_class.items()}, seed)
    extra = {label: round((fraction - 1) * n) for label, n in per_class.items()}
    available = {label: len(members) for label, members in _by_class(pool or []).items()}
    if short := {label: need for label, need in extra.items() if available.get(label, 0) < need}:
        raise SubsetError(f"fraction={fraction}: needs {sum(extra.values())} pool videos ({max(short.values())} "
                          f"of class {min(short)}), the pool holds {sum(available.values())}: expected --pool with "
                          f"at least {max(extra.values())} videos a class")
    return list(rows) + _first_of_each_class(pool or [], extra, seed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", metavar="TRAIN_CSV", type=Path, help="manifest to subsample (path,label)")
    parser.add_argument("--fraction", type=float, required=True,
                        help="size relative to TRAIN_CSV, per class: in (0, 1] a subset, above 1 with --pool videos")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-class permutations")
    parser.add_argument("--pool", type=Path, help="unlabelled videos (path,label) a fraction above 1 draws from")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write")


def main(args: argparse.Namespace) -> int:
    rows = read_manifest(args.manifest)
    if args.fraction > 1 and args.pool is None:
        raise SubsetError(f"fraction={args.fraction}: above 1 draws from --pool (unlabelled videos); none given")
    pool = read_manifest(args.pool) if args.pool is not None else None
    subset = stratified_subset(rows, args.fraction, args.seed, pool)
    write_manifest(args.out, subset)
    per_class = Counter(label for _, label in subset)
    print(f"wrote {args.out}: {len(subset)} of {len(rows)} videos, "
          f"{min(per_class.values())}-{max(per_class.values())} a class over {len(per_class)} classes")
    return 0
