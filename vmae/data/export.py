"""`vmae export-list DATA_DIR --out DIR`: a prepared folder's manifests in the official VideoMAE
list format: ``DIR/train.csv`` and ``DIR/val.csv`` with one ``<absolute path> <label>`` line a
video, a single space, no header (the official loader joins the path to its ``data_path``, which
an absolute path overrides).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vmae.data.formats.generic import write_videomae_list
from vmae.data.manifest import read_manifest

SPLITS = ("train", "val")


def export_list(data_dir: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write ``out_dir/{train,val}.csv`` from ``data_dir``'s manifests; returns lines per split.

    Paths with whitespace cannot be read back by the official space-delimited loader: they raise
    ``ValueError`` naming the path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        manifest = Path(data_dir) / f"{split}.csv"
        rows = read_manifest(manifest)
        for path, _ in rows:
            if any(ch.isspace() for ch in path):
                raise ValueError(f"{manifest}: path {path!r} contains whitespace: expected none in the "
                                 "space-delimited VideoMAE list format")
        write_videomae_list(out_dir / f"{split}.csv", rows)
        counts[split] = len(rows)
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR", type=Path, help="prepared dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for train.csv and val.csv")


def main(args: argparse.Namespace) -> int:
    counts = export_list(args.data_dir, args.out)
    print(f"wrote {args.out}: " + ", ".join(f"{split}.csv {n} lines" for split, n in counts.items()))
    return 0
