"""`vmae subset TRAIN_CSV --fraction F --seed S --out FILE`: a stratified, nested manifest subset.

Each class gets its own permutation seeded by (seed, label); a subset takes the first
``max(1, round(F * n_class))`` videos of every class's permutation, so for one seed the 0.25
subset lies inside the 0.5 subset, which lies inside the full manifest. Rows keep the manifest's
order.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from vmae.data.manifest import read_manifest, write_manifest


def stratified_subset(rows: list[tuple[str, int]], fraction: float, seed: int) -> list[tuple[str, int]]:
    """The rows of a ``fraction`` subset (see the module docstring); ``0 < fraction <= 1``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction}: expected a value in (0, 1]")
    positions: dict[int, list[int]] = defaultdict(list)
    for position, (_, label) in enumerate(rows):
        positions[label].append(position)
    keep: set[int] = set()
    for label, members in positions.items():
        order = np.random.default_rng([seed, label]).permutation(len(members))
        count = max(1, round(fraction * len(members)))
        keep.update(members[i] for i in order[:count])
    return [row for position, row in enumerate(rows) if position in keep]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", metavar="TRAIN_CSV", type=Path, help="manifest to subsample (path,label)")
    parser.add_argument("--fraction", type=float, required=True, help="share of every class to keep, in (0, 1]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-class permutations")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write")


def main(args: argparse.Namespace) -> int:
    rows = read_manifest(args.manifest)
    subset = stratified_subset(rows, args.fraction, args.seed)
    write_manifest(args.out, subset)
    per_class = Counter(label for _, label in subset)
    print(f"wrote {args.out}: {len(subset)} of {len(rows)} videos, "
          f"{min(per_class.values())}-{max(per_class.values())} a class over {len(per_class)} classes")
    return 0
