"""Which weights a run uses and their fingerprint, without PyTorch.

A :class:`ModelRef` names a model geometry and a weights file (the bundled default, a path, or
``random``) and carries the fingerprint that keys every engine made from them (config + weights
content: moving the file does not change it). The torch-free runtime needs no more than this to find
its engines; :func:`speech2vid.model.weights.load_model` builds the network from the same reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech2vid.config import ModelConfig
from speech2vid.errors import WeightsError
from speech2vid.files import sha256_file

RANDOM = "random"


@dataclass(frozen=True)
class ModelRef:
    """A model geometry and the weights it runs with; ``fingerprint`` keys the engine cache."""

    cfg: ModelConfig
    source: str  # the weights file, or "random"
    is_random: bool
    fingerprint: str
    weights_sha256: str | None  # None for random weights

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def label(self) -> str:
        return "RANDOM WEIGHTS (untrained: shows no face)" if self.is_random else Path(self.source).name


def config_sha256(cfg: ModelConfig) -> str:
    """Hash of the geometry. Fields left at their default are left out, so that a new config field whose
    default keeps the old behaviour does not change the fingerprint of every engine (nor of the shipped graphs)."""
    return hashlib.sha256(json.dumps(_explicit(cfg), sort_keys=True).encode()).hexdigest()


def _explicit(obj: Any) -> Any:
    """A config dataclass as plain data without the fields that equal their declared default."""
    if isinstance(obj, (tuple, list)):
        return [_explicit(v) for v in obj]
    if not dataclasses.is_dataclass(obj):
        return obj
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.name == "description":  # words about the model, not the model
            continue
        out[f.name] = _explicit(value)
    return out


def bundled_weights(model_name: str) -> Path | None:
    """The default weights shipped for a model (assets/weights/<name>.safetensors), if any ship."""
    from speech2vid.assets import bundled_weights_dir

    path = bundled_weights_dir() / f"{model_name}.safetensors"
    return path if path.is_file() else None


def model_ref(cfg: ModelConfig, weights: str | Path | None) -> ModelRef:
    """``cfg`` with ``weights``: a safetensors file, ``"random"``, or None for the bundled default.

    A model without bundled weights, or a weights path that is not a safetensors file of FP32, FP16 or
    BF16 tensors, is a WeightsError saying what to pass instead. The file's content is hashed here and
    its header checked; the tensors are not read (that needs PyTorch).
    """
    config_hash = config_sha256(cfg)
    if weights is None:
        weights = bundled_weights(cfg.name)
        if weights is None:
            from speech2vid.assets import bundled_weights_dir

            shipped = sorted(p.stem for p in bundled_weights_dir().glob("*.safetensors"))
            raise WeightsError(
                f"no trained weights for model '{cfg.name}' are bundled (bundled: {', '.join(shipped) or 'none'}):"
                " pass --weights FILE.safetensors (from `speech2vid import-matconvnet` or `speech2vid train`),"
                " or --weights random to test the plumbing"
            )
    if str(weights) == RANDOM:
        fingerprint = hashlib.sha256(f"{config_hash}:random:0".encode()).hexdigest()
        return ModelRef(cfg, RANDOM, True, fingerprint, None)
    path = Path(weights).expanduser()
    read_weights_header(path)
    try:
        weights_sha = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path} ({exc.strerror or type(exc).__name__})") from None
    fingerprint = hashlib.sha256(f"{config_hash}:{weights_sha}".encode()).hexdigest()
    return ModelRef(cfg, str(path), False, fingerprint, weights_sha)


# safetensors: an 8-byte little-endian header length, then that many bytes of JSON starting with "{".
_HEADER_LEN_BYTES = 8
_MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
# What else people pass as weights, by their first bytes, to say what the file is instead.
_OTHER_FORMATS = (
    (b"PK\x03\x04", "a zip archive, as torch.save writes: pickled Python objects"),
    (b"\x80", "a Python pickle"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"MATLAB", "a MATLAB file: convert it with `speech2vid import-matconvnet`"),
    (b"\x89HDF", "an HDF5 file"),
)
# The floating-point dtypes a weights file may hold (safetensors' names), as the README lists them; FP16
# and BF16 are upcast on load. Any other float (F64, the F8 kinds) is a file written wrongly: the
# graphs, engines and tolerances are made for these three.
WEIGHT_FLOAT_DTYPES = ("F32", "F16", "BF16")
_DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}
# Where a path that is not a regular file is named for what it is (os.stat mode tests).
_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def check_weights_path(path: Path) -> None:
    """WeightsError unless ``path`` is a regular file. A folder, device (/dev/zero) or FIFO is named for
    what it is, without opening it: reading one would never end, or block."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path} ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISREG(mode):
        return
    kind = next((what for test, what in _FILE_KINDS if test(mode)), "not a regular file")
    raise WeightsError(f"{path} is {kind}, not a weights file: give a .safetensors file")


def read_weights_header(path: Path) -> dict[str, Any]:
    """The safetensors header of the weights file ``path`` ({tensor name: {"dtype", "shape", ...}}, and
    "__metadata__"), torch-free, after refusing (WeightsError, one line):

    * a path that is not a regular file (:func:`check_weights_path`);
    * a file that is not safetensors, saying what it is (a pickle, above all) instead of what the
      safetensors parser makes of its first bytes ("header too large");
    * a floating-point tensor that is not FP32, FP16 or BF16, naming the tensor and its dtype.
    """
    check_weights_path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEADER_LEN_BYTES + 1)
            n = int.from_bytes(head[:_HEADER_LEN_BYTES], "little") if len(head) > _HEADER_LEN_BYTES else -1
            is_safetensors = (
                0 < n <= min(size - _HEADER_LEN_BYTES, _MAX_HEADER_BYTES) and head[_HEADER_LEN_BYTES:] == b"{"
            )
            text = head[_HEADER_LEN_BYTES:] + f.read(n - 1) if is_safetensors else b""
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path} ({exc.strerror or type(exc).__name__})") from None
    if not is_safetensors:
        kind = next((what for magic, what in _OTHER_FORMATS if head.startswith(magic)), "an unknown format")
        raise WeightsError(
            f"{path} is not a safetensors file ({kind}): weights are read only from safetensors, which hold tensors"
            " and no code; pickled checkpoints (.pt, .pth, .ckpt) are refused on purpose, because loading one can"
            " run any code: convert it to safetensors on a machine you trust (safetensors.torch.save_file)"
        )
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise WeightsError(
            f"{path} is not a readable safetensors weights file (its header is not a JSON object):"
            " the file is damaged; copy or export it again"
        )
    for name, info in header.items():
        dtype = info.get("dtype") if isinstance(info, dict) and name != "__metadata__" else None
        if isinstance(dtype, str) and dtype.startswith(("F", "BF")) and dtype not in WEIGHT_FLOAT_DTYPES:
            raise WeightsError(
                f"{path}: tensor '{name}' is {_DTYPE_NAMES.get(dtype, dtype)}, but weights must be FP32, FP16 or BF16:"
                " convert the file (tensor.float() for each tensor, then safetensors.torch.save_file)"
            )
    return header
