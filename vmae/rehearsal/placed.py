"""Something-Something V2 and Kinetics-400 as a user places them below ``<raw>/<name>/`` (neither
can be downloaded by the workflow: SSv2 needs a login, K400 hundreds of shards), with a few classes
of small videos; the annotations name every class, as the originals do.

- SSv2: ``something-something-v2-{labels,train,validation}.json`` (174 templates) and
  ``20bn-something-something-v2/<id>.webm`` (VP9).
- K400: ``annotations/{train,val}.csv`` (CVDF names; all 400 labels, videos of 4 exist and the rest
  are missing, as in every copy) and ``{train,val}/<id>_<start:06d>_<end:06d>.mp4`` (H.264).

``FILES[name](scratch)`` gives relative path -> bytes; ``check_empty`` refuses a folder that holds
other files (a real copy there would be mixed with stand-ins) and ``write_tree`` writes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from vmae.atomic import atomic_path
from vmae.errors import UserError
from vmae.rehearsal.archives import TEST_PER_CLASS, TRAIN_PER_CLASS
from vmae.rehearsal.media import h264, vp9
from vmae.rehearsal.official import k400_classes, ssv2_templates

K400_WITH_VIDEOS = ["abseiling", "curling hair", "massaging person's head", "passing American football (in game)"]
SSV2_PREFIXES = ("Approaching", "Pushing", "Spinning")  # the templates with videos


class PlacementError(UserError, RuntimeError):
    """The raw folder holds files the mirror does not write (a real copy, say)."""


def ssv2_files(scratch: Path) -> dict[str, bytes]:
    """The labels archive's three JSON files and ``20bn-something-something-v2/<id>.webm``."""
    templates = ssv2_templates()
    chosen = [t for t in templates if t.startswith(SSV2_PREFIXES)]
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    members: dict[str, bytes] = {"something-something-v2-labels.json": json.dumps(labels, indent=1).encode()}
    next_id = 74225
    for part, per_class in (("train", TRAIN_PER_CLASS), ("validation", TEST_PER_CLASS)):
        entries = []
        for direction, template in enumerate(chosen):
            for _ in range(per_class):
                entries.append({"id": str(next_id), "label": template.replace("[something]", "cube").lower(),
                                "template": template, "placeholders": ["cube"] * template.count("[")})
                members[f"20bn-something-something-v2/{next_id}.webm"] = vp9(next_id, direction, scratch)
                next_id += 1
        members[f"something-something-v2-{part}.json"] = json.dumps(entries).encode()
    return members


def k400_files(scratch: Path) -> dict[str, bytes]:
    """``annotations/train.csv`` and ``val.csv`` and the unpacked shards' ``train/`` and ``val/``
    videos of 4 classes."""
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    members: dict[str, bytes] = {}
    for part, per_class in (("train", TRAIN_PER_CLASS), ("val", TEST_PER_CLASS)):
        lines = [header]
        for c, label in enumerate(k400_classes()):
            with_videos = label in K400_WITH_VIDEOS
            if not with_videos and part == "val":
                continue
            for k in range(per_class if with_videos else 1):
                youtube_id, start = f"{part[0]}{c:03d}-Xy_{k}", 10 * k + 3
                quoted = f'"{label}"' if " " in label else label
                lines.append(f"{quoted},{youtube_id},{start},{start + 10},{part},0\n")
                if with_videos:
                    name = f"{part}/{youtube_id}_{start:06d}_{start + 10:06d}.mp4"
                    members[name] = h264(3000 * c + 10 * k + len(part), K400_WITH_VIDEOS.index(label), scratch)
        members[f"annotations/{part}.csv"] = "".join(lines).encode()
    return members


FILES: dict[str, Callable[[Path], dict[str, bytes]]] = {"ssv2": ssv2_files, "k400": k400_files}


def foreign_files(root: Path, members: dict[str, bytes]) -> list[str]:
    """Files below ``root`` (relative, ``/``-separated, sorted) that are not among ``members``;
    hidden files (the mirror's own notes, temporary files of a killed run) are not counted."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            rel = Path(folder, name).relative_to(root).as_posix()
            if not name.startswith(".") and rel not in members:
                found.append(rel)
    return sorted(found)


def write_tree(root: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` (relative path -> bytes) below ``root``, each file atomically."""
    for name, data in members.items():
        with atomic_path(root / name, fsync=False, what="a placed file") as tmp:
            tmp.write_bytes(data)


def check_empty(raw: Path, name: str, members: dict[str, bytes]) -> None:
    """``PlacementError`` when ``raw`` (``<raw>/<name>``) holds files other than ``members``: a real
    copy there would be mixed with stand-ins. A folder the mirror filled before is fine (rerun)."""
    foreign = foreign_files(raw, members) if raw.is_dir() else []
    if foreign:
        raise PlacementError(f"{raw}: holds {len(foreign)} file(s) the rehearsal's mirror does not write "
                             f"(first: {foreign[0]}): expected an empty folder, so that stand-in videos are "
                             f"never mixed with real {name} files; give the rehearsal another --raw folder")
