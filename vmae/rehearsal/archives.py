"""UCF101 and HMDB51 as their sites serve them, with a few classes of small videos (the annotation
files still name every class, as the originals do):

- ``UCF101.rar``: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (XviD AVI, 64x48, 25 fps), with the
  ``HandstandPushups`` / ``v_HandStandPushups_`` case quirk; ``UCF101TrainTestSplits-RecognitionTask.zip``:
  ``ucfTrainTestlist/`` with ``classInd.txt`` (101 classes), ``trainlist0N.txt`` and
  ``testlist0N.txt``, CRLF. Split k tests groups 1-2 of each class and trains on groups 8-11.
- ``hmdb51_org.rar``: one ``<class>.rar`` a class holding ``<class>/<video>.avi`` (a RAR of RARs);
  ``test_train_splits.rar``: ``testTrainMulti_7030_splits/<class>_test_splitN.txt`` for all 51
  classes (LF, trailing space; classes without videos here flag their one video 0, unused).

RARs are stored, not compressed (``vmae.rehearsal.rar4``). ``layout.ARCHIVES`` are the file names,
as ``datasets/ucf101.yaml`` and ``hmdb51.yaml`` list them.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from vmae.atomic import atomic_path
from vmae.rehearsal.layout import ARCHIVES
from vmae.rehearsal.media import xvid
from vmae.rehearsal.official import HMDB_CLASSES, hmdb51_video, ucf101_classes, ucf101_file_class
from vmae.rehearsal.rar4 import rar_bytes

TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 2
UCF_CLASSES = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "HandstandPushups"]
HMDB_WITH_VIDEOS = ["brush_hair", "kick", "kick_ball", "sword"]  # kick / kick_ball: a prefix pair
ZIP_TIME = (2013, 10, 1, 0, 0, 0)


def _crlf(lines: list[str]) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


def ucf101_files(scratch: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(videos, lists): archive member name -> bytes of ``UCF101.rar`` and of the split zip."""
    classes = ucf101_classes()
    videos: dict[str, bytes] = {}
    train: list[str] = []
    test: list[str] = []
    for c, name in enumerate(UCF_CLASSES):
        for g in [*range(1, 1 + TEST_PER_CLASS), *range(8, 8 + TRAIN_PER_CLASS)]:
            rel = f"{name}/v_{ucf101_file_class(name)}_g{g:02d}_c01.avi"
            videos[f"UCF-101/{rel}"] = xvid(1000 * c + g, c, scratch)
            (test if g <= TEST_PER_CLASS else train).append(rel)
    lists = {"ucfTrainTestlist/classInd.txt": _crlf([f"{i + 1} {n}" for i, n in enumerate(classes)])}
    for split in (1, 2, 3):
        lists[f"ucfTrainTestlist/trainlist0{split}.txt"] = _crlf(
            [f"{rel} {classes.index(rel.split('/')[0]) + 1}" for rel in train])
        lists[f"ucfTrainTestlist/testlist0{split}.txt"] = _crlf(test)
    return videos, lists


def hmdb51_files(scratch: Path) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
    """(class -> {``<class>/<video>.avi``: bytes}, split-file member name -> bytes)."""
    videos: dict[str, dict[str, bytes]] = {}
    splits: dict[str, bytes] = {}
    for c, cls in enumerate(HMDB_CLASSES):
        if cls in HMDB_WITH_VIDEOS:
            direction = HMDB_WITH_VIDEOS.index(cls)
            names = [hmdb51_video(cls, i) for i in range(TRAIN_PER_CLASS + TEST_PER_CLASS + 1)]
            flags = ["1"] * TRAIN_PER_CLASS + ["2"] * TEST_PER_CLASS + ["0"]
            videos[cls] = {f"{cls}/{name}": xvid(2000 * c + i, direction, scratch) for i, name in enumerate(names)}
        else:
            names, flags = [hmdb51_video(cls, 1)], ["0"]
        for split in (1, 2, 3):
            text = "".join(f"{name} {flag} \n" for name, flag in zip(names, flags))
            splits[f"testTrainMulti_7030_splits/{cls}_test_split{split}.txt"] = text.encode()
    return videos, splits


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """``members`` as a deflated zip with fixed time stamps (the same members give the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, ZIP_TIME), data)
    return buffer.getvalue()


def build_archives(out: Path, scratch: Path) -> dict[str, Path]:
    """Write the four archives of ``ARCHIVES`` into ``out`` (each atomically); returns name -> path."""
    ucf_videos, ucf_lists = ucf101_files(scratch)
    hmdb_videos, hmdb_splits = hmdb51_files(scratch)
    archives = {
        "UCF101.rar": rar_bytes(ucf_videos),
        "UCF101TrainTestSplits-RecognitionTask.zip": zip_bytes(ucf_lists),
        "hmdb51_org.rar": rar_bytes({f"{cls}.rar": rar_bytes(files) for cls, files in hmdb_videos.items()}),
        "test_train_splits.rar": rar_bytes(hmdb_splits),
    }
    paths = {}
    for name in ARCHIVES:
        with atomic_path(out / name, what="a mirror archive") as tmp:
            tmp.write_bytes(archives[name])
        paths[name] = out / name
    return paths


def extracted_copy(dataset: str, scratch: Path) -> dict[str, bytes]:
    """The files of ``dataset`` ("ucf101" or "hmdb51") as a lab keeps an unpacked copy, relative
    path -> bytes: ``UCF-101/`` + ``ucfTrainTestlist/``, or ``hmdb51_org/<class>/`` +
    ``testTrainMulti_7030_splits/``; no archives."""
    if dataset == "ucf101":
        videos, lists = ucf101_files(scratch)
        return {**videos, **lists}
    per_class, splits = hmdb51_files(scratch)
    members = {f"hmdb51_org/{name}": data for files in per_class.values() for name, data in files.items()}
    return {**members, **splits}
