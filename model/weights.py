"""Weight files: safetensors with the model geometry in the metadata.

safetensors holds tensors only (no pickled code), so loading an untrusted file cannot run anything.
FP16 files (the compact form we ship) are upcast to the model's dtype on load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from speech2vid.config import ModelConfig, to_dict
from speech2vid.errors import WeightsError
from speech2vid.files import atomic_path, sha256_file
from speech2vid.model.ref import (  # noqa: F401  (RANDOM, bundled_weights: re-exported)
    RANDOM,
    bundled_weights,
    model_ref,
    read_weights_header,
)
from speech2vid.model.speech2vid import Speech2Vid

FORMAT = "speech2vid-weights-1"


def save_weights(
    model: Speech2Vid, path: str | Path, *, half: bool = False, extra: dict[str, str] | None = None
) -> Path:
    """Write the state dict (optionally as FP16) atomically: a temporary file renamed when complete."""
    path = Path(path)
    dtype = torch.float16 if half else None
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    meta = {"format": FORMAT, "model": model.cfg.name, "model_config": json.dumps(to_dict(model.cfg))}
    meta.update(extra or {})
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_weights(model: Speech2Vid, path: str | Path) -> dict[str, str]:
    """Load ``path`` into ``model``; returns the file's metadata.

    Refuses (WeightsError, one line) a missing or corrupt file and the first tensor whose name or shape
    does not fit the model, naming it, so a ``paper`` file cannot be loaded into ``lite`` by mistake.
    """
    path = Path(path)
    read_weights_header(path)  # not a file, not safetensors, or floats other than FP32/FP16/BF16
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors weights file ({exc})".replace("\n", " ")) from None
    expected = model.state_dict()
    for name, want in expected.items():
        if name not in tensors:
            raise WeightsError(
                f"{path} does not fit model '{model.cfg.name}': tensor '{name}' is missing"
                f" (the file was made for model '{meta.get('model', 'unknown')}')"
            )
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            raise WeightsError(
                f"{path} does not fit model '{model.cfg.name}': '{name}' has shape {tuple(got.shape)},"
                f" expected {tuple(want.shape)} (the file was made for model '{meta.get('model', 'unknown')}')"
            )
        _check_values(path, name, got, want)
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise WeightsError(f"{path} does not fit model '{model.cfg.name}': unexpected tensor '{unexpected[0]}'")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return meta


# Dtypes a weights tensor may have: floats (FP16 and BF16 files are upcast) for float parameters, integers
# for counters (BatchNorm's num_batches_tracked). An int8 tensor where a float one belongs is garbage.
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _check_values(path: Path, name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    """Refuse a tensor of the wrong kind of dtype, or with NaN or infinite values (a black video otherwise)."""
    if want.is_floating_point():
        if got.dtype not in _FLOAT_DTYPES:
            kind = "FP32, FP16 or BF16" if got.is_floating_point() else "floating point (FP32, FP16 or BF16)"
            raise WeightsError(
                f"{path}: tensor '{name}' is {str(got.dtype).removeprefix('torch.')}, expected {kind}:"
                " the file was written wrongly; re-export the weights"
            )
        bad = int((~torch.isfinite(got)).sum())
        if bad:
            raise WeightsError(
                f"{path}: tensor '{name}' holds {bad} non-finite values (NaN or infinity): the weights are"
                " broken (a diverged training run?); use an earlier checkpoint"
            )
    elif got.is_floating_point() or got.dtype == torch.bool:
        raise WeightsError(f"{path}: tensor '{name}' is {str(got.dtype).removeprefix('torch.')}, expected an integer")


def synthetic_inputs(model: Speech2Vid, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random MFCC windows and identity-face stacks in the ranges the model sees."""
    from speech2vid.features.windows import N_CEPS, WINDOW_COLS
    from speech2vid.model.io_spec import FACE_SIZE

    mfcc = torch.randn(n, 1, N_CEPS, WINDOW_COLS, generator=gen) * 10.0
    faces = torch.rand(n, 3 * model.cfg.identity_faces, FACE_SIZE, FACE_SIZE, generator=gen) * 255.0
    return mfcc, faces


def random_weights(model: Speech2Vid, seed: int = 0) -> Speech2Vid:
    """Untrained weights for plumbing tests: PyTorch's default init, then BatchNorm statistics
    estimated on synthetic inputs so that activations have a sane range and the output is a visible
    texture rather than a saturated flat colour. The result shows no face: label it as such."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        reset = getattr(m, "reset_parameters", None)
        if reset is not None and not isinstance(m, torch.nn.BatchNorm2d):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                reset()
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the warm-up batch
    mfcc, faces = synthetic_inputs(model, 8, gen)
    model.train()
    with torch.no_grad():
        model(mfcc, faces)
    model.eval()
    return model


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference (eval mode, CPU, FP32) and where its weights came from."""

    model: Speech2Vid
    source: str  # the weights file, or "random"
    is_random: bool
    fingerprint: str  # identifies config + weights: the key of every engine built from them

    @property
    def cfg(self) -> ModelConfig:
        return self.model.cfg

    @property
    def name(self) -> str:
        return self.model.cfg.name

    @property
    def label(self) -> str:
        return "RANDOM WEIGHTS (untrained: shows no face)" if self.is_random else Path(self.source).name


def load_model(cfg: ModelConfig, weights: str | Path | None) -> LoadedModel:
    """Build ``cfg`` and fill it from ``weights``: a safetensors file, ``"random"``, or None.

    None means the bundled default weights of the model; a model without them is an error that tells
    the user how to get weights (``model.ref.model_ref`` resolves and fingerprints them, torch-free).
    """
    from speech2vid.model.speech2vid import build_model

    ref = model_ref(cfg, weights)
    model = build_model(cfg)
    if ref.is_random:
        random_weights(model, seed=0)
    else:
        load_weights(model, ref.source)
    return LoadedModel(model.eval(), ref.source, ref.is_random, ref.fingerprint)
