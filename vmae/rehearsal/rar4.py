"""A minimal RAR 4 writer (stored, uncompressed members), written from the RAR 1.5-4.x block
layout: the ``Rar!\\x1a\\x07\\x00`` marker, an archive header (type 0x73), one file header (type 0x74,
method 0x30 = store) plus data per member, an end block (0x7b). Each header starts with the low 16
bits of the CRC32 of the header bytes after the CRC field.

``rar`` itself is non-free (Debian has no RAR encoder in main), so the rehearsal's UCF101 / HMDB51
archives are written here; ``unar`` / ``lsar``, ``bsdtar`` and libarchive read them
(``vmae.data.extract``). Only the layouts and the nesting of the real archives are reproduced, not
their compressed methods.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from vmae.atomic import atomic_path

MARKER = b"Rar!\x1a\x07\x00"
LONG_BLOCK = 0x8000  # the header is followed by PACK_SIZE bytes of data
DOS_TIME_2020 = (2020 - 1980) << 25 | 1 << 21 | 1 << 16  # 2020-01-01 00:00:00
MAX_MEMBER_BYTES = 0xFFFFFFFF  # RAR 4 without the large-file flag: 32-bit sizes


def _block(head_type: int, flags: int, body: bytes) -> bytes:
    header = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def rar_bytes(members: dict[str, bytes], unix_modes: dict[str, int] | None = None) -> bytes:
    """``members`` (archive name with ``/`` -> bytes) as a stored RAR 4 archive.

    ``unix_modes``: members written as made on Unix (host OS 3) with this ``st_mode``, e.g.
    ``0o120777`` for a symbolic link whose data is its target; the others as made on Windows."""
    unix_modes = unix_modes or {}
    parts = [MARKER, _block(0x73, 0, bytes(6))]
    for name, data in members.items():
        if len(data) > MAX_MEMBER_BYTES:
            raise ValueError(f"{name}: {len(data)} bytes: expected at most {MAX_MEMBER_BYTES} in a RAR 4 member")
        raw_name = name.replace("/", "\\").encode()  # RAR 4 separates folders with backslashes
        host, attributes = (3, unix_modes[name]) if name in unix_modes else (2, 0x20)
        body = struct.pack("<IIBIIBBHI", len(data), len(data), host, zlib.crc32(data), DOS_TIME_2020,
                           20, 0x30, len(raw_name), attributes) + raw_name
        parts += [_block(0x74, LONG_BLOCK, body), data]
    parts.append(_block(0x7B, 0x4000, b""))
    return b"".join(parts)


def write_rar(path: str | Path, members: dict[str, bytes], unix_modes: dict[str, int] | None = None) -> Path:
    """Write ``rar_bytes(members, unix_modes)`` to ``path`` (atomically); returns ``path``."""
    path = Path(path)
    with atomic_path(path, fsync=False, what="the RAR archive") as tmp:
        tmp.write_bytes(rar_bytes(members, unix_modes))
    return path
