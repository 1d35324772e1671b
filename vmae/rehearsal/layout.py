"""Where the rehearsal's mirror puts its files (no heavy imports: the workflow reads this while it
plans): the four archives and ``sources.yaml`` in one folder, and a note ``.vmae-mirror.json`` in each
placed dataset's raw folder.
"""

from __future__ import annotations

import os
from typing import Any

from vmae.errors import UserError

ARCHIVES = ("UCF101.rar", "UCF101TrainTestSplits-RecognitionTask.zip", "hmdb51_org.rar", "test_train_splits.rar")
SOURCES = "sources.yaml"
PLACED_NOTE = ".vmae-mirror.json"
MIRRORED = ("ucf101", "hmdb51")  # downloaded datasets: archives + sources entries
PLACED = ("ssv2", "k400")  # placed by hand: files below <raw>/<name>/


class MirrorConfigError(UserError, ValueError):
    """``datasets.mirror: true`` with a ``datasets.sources`` the mirror cannot write."""


def workflow_outputs(datasets: dict[str, Any]) -> dict[str, Any]:
    """The rule ``mirror``'s outputs for the config's ``datasets`` section: ``folder`` (the mirror,
    the folder of ``datasets.sources``), ``sources``, ``archives`` (paths) and ``placed`` (dataset ->
    its note: ``<raw>/ssv2/.vmae-mirror.json``, ``<raw>/k400/...``)."""
    sources = datasets.get("sources")
    if not sources or os.path.basename(sources) != SOURCES:
        raise MirrorConfigError(f"datasets.sources: {sources!r}: expected <folder>/{SOURCES} with datasets.mirror: "
                                "true (the mirror writes its archives and that file into <folder>)")
    folder = os.path.dirname(sources) or "."
    return {
        "folder": folder,
        "sources": sources,
        "archives": [os.path.join(folder, name) for name in ARCHIVES],
        "placed": {name: os.path.join(datasets["raw"], name, PLACED_NOTE) for name in PLACED},
    }
