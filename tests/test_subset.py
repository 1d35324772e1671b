"""`vmae subset`: stratified by class, nested across fractions, seeded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from vmae.cli import main as vmae
from vmae.data.manifest import read_manifest, write_manifest
from vmae.data.subset import stratified_subset

# 3 classes of 40, 10 and 3 videos, interleaved
ROWS = [(f"/v/{label}_{i}.avi", label) for i in range(40) for label in (0, 1, 2)
        if i < {0: 40, 1: 10, 2: 3}[label]]


def test_counts_per_class_round_with_at_least_one():
    subset = stratified_subset(ROWS, 0.25, seed=0)
    assert Counter(label for _, label in subset) == {0: 10, 1: 2, 2: 1}  # round(2.5) = 2; max(1, round(0.75))
    assert Counter(label for _, label in stratified_subset(ROWS, 0.1, seed=0)) == {0: 4, 1: 1, 2: 1}
    assert stratified_subset(ROWS, 1.0, seed=3) == ROWS


def test_nested_across_fractions_and_in_manifest_order():
    fractions = [0.1, 0.25, 0.5, 0.75, 1.0]
    subsets = [stratified_subset(ROWS, f, seed=7) for f in fractions]
    for small, large in zip(subsets, subsets[1:]):
        assert set(small) < set(large)
    for subset in subsets:
        assert subset == [row for row in ROWS if row in set(subset)]


def test_seed_changes_the_choice_deterministically():
    assert stratified_subset(ROWS, 0.5, seed=1) == stratified_subset(ROWS, 0.5, seed=1)
    assert set(stratified_subset(ROWS, 0.5, seed=1)) != set(stratified_subset(ROWS, 0.5, seed=2))


def test_a_class_choice_does_not_depend_on_other_classes():
    only_class_0 = [row for row in ROWS if row[1] == 0]
    assert stratified_subset(only_class_0, 0.25, seed=4) == [
        row for row in stratified_subset(ROWS, 0.25, seed=4) if row[1] == 0]


@pytest.mark.parametrize("fraction", [0.0, -0.5])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=f"fraction={fraction}: expected a value > 0"):
        stratified_subset(ROWS, fraction, seed=0)


POOL = [(f"/pool/{label}_{i}.avi", label) for i in range(120) for label in (0, 1, 2)]


def test_above_one_the_whole_training_set_and_nested_pool_videos_per_class():
    sets = {f: stratified_subset(ROWS, f, seed=5, pool=POOL) for f in (1.5, 2.0, 4.0)}
    for f, rows in sets.items():
        assert rows[:len(ROWS)] == ROWS  # the training set first, whole
        extra = Counter(label for path, label in rows[len(ROWS):])
        assert extra == {0: round((f - 1) * 40), 1: round((f - 1) * 10), 2: round((f - 1) * 3)}
        assert all(path.startswith("/pool/") for path, _ in rows[len(ROWS):])
    assert set(stratified_subset(ROWS, 1.0, seed=5)) < set(sets[1.5]) < set(sets[2.0]) < set(sets[4.0])
    assert set(sets[2.0]) != set(stratified_subset(ROWS, 2.0, seed=6, pool=POOL))  # the seed picks the pool videos


def test_a_pool_too_small_or_missing_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"fraction=4.0: needs 159 pool videos \(120 of class 0\), the pool holds 30"):
        stratified_subset(ROWS, 4.0, seed=0, pool=POOL[:30])
    write_manifest(tmp_path / "train.csv", [(str(tmp_path / "v" / f"{i}.avi"), i % 3) for i in range(9)])
    assert vmae(["subset", str(tmp_path / "train.csv"), "--fraction", "2.0", "--out", str(tmp_path / "x.csv")]) == 2


def test_cli_writes_relative_manifest(tmp_path, capsys):
    rows = [(str(tmp_path / "videos" / Path(name).name), label) for name, label in ROWS]
    write_manifest(tmp_path / "train.csv", rows)
    out = tmp_path / "train_frac0.5.csv"
    assert vmae(["subset", str(tmp_path / "train.csv"), "--fraction", "0.5", "--seed", "0", "--out", str(out)]) == 0
    written = read_manifest(out)
    assert written == stratified_subset(rows, 0.5, seed=0) and len(written) == 20 + 5 + 2
    assert out.read_text().splitlines()[1].startswith("videos/")
    assert "27 of 53 videos" in capsys.readouterr().out
