"""Detect truncated WAV files, which FFmpeg decodes silently as far as the bytes go.

A RIFF/WAVE header states the size of its ``data`` chunk; a download or recording cut short leaves
fewer bytes than that. Comparing the two is exact and cheap, and catches what decoding cannot.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

# Sizes that streaming writers put in the header when they do not know the length yet.
_UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF, 0x7FFFFFFF})
_MAX_CHUNKS = 64  # a real WAV has a handful; stops a loop over garbage


def wav_truncation(source: str | os.PathLike[str] | bytes) -> str | None:
    """Describe how a RIFF/WAVE file (a path, or its bytes read from a pipe) is truncated, or return None
    (not a WAV, unknown size, or complete).

    The description reads like ``"header declares 2.00 s of audio, the file holds 0.75 s"``.
    """
    if isinstance(source, bytes):
        return _truncation(io.BytesIO(source), len(source))
    p = Path(source)
    try:
        with p.open("rb") as f:
            return _truncation(f, p.stat().st_size)
    except OSError:
        return None  # unreadable: let the decoder report it


def _truncation(f: BinaryIO, file_size: int) -> str | None:
    """:func:`wav_truncation` of an open binary file of ``file_size`` bytes."""
    riff = f.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        return None
    byte_rate = block_align = 0
    for _ in range(_MAX_CHUNKS):
        header = f.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk_id == b"fmt ":
            fmt = f.read(min(size, 16))
            if len(fmt) < 16:
                return None
            _, _, _, byte_rate, block_align, _ = struct.unpack("<HHIIHH", fmt)
            f.seek(size - 16 + (size & 1), os.SEEK_CUR)
        elif chunk_id == b"data":
            if size in _UNKNOWN_SIZES or byte_rate == 0:
                return None
            held = file_size - f.tell()
            if size - held < max(block_align, 1):  # allow a partial last sample frame
                return None
            return f"header declares {size / byte_rate:.2f} s of audio, the file holds {max(held, 0) / byte_rate:.2f} s"
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    return None
