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

    A model without bundled weights, or a weights path that is not a file, is a WeightsError saying
    what to pass instead. The file's content is hashed here; it is not parsed (that needs PyTorch).
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
    if path.is_dir():
        raise WeightsError(f"--weights {path} is a folder: give a .safetensors file")
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    weights_sha = sha256_file(path)
    fingerprint = hashlib.sha256(f"{config_hash}:{weights_sha}".encode()).hexdigest()
    return ModelRef(cfg, str(path), False, fingerprint, weights_sha)
