"""``speech2vid pack-weights``: a trained FP32 weights file -> the compact file that ships.

Halving every float tensor halves the file; the loader upcasts to FP32, so only the rounding of the
weights remains. Where that rounding shows (the warp head of ``lite`` resamples the photo at
coordinates it computes: FP16 weights move its frames by up to 0.15), ``--fp32`` keeps full precision. The packer
measures that rounding's effect on rendered
frames before it writes, and keeps where the weights came from (the training run's step, epoch,
data and config, read from the run folder's state.json) in the file's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speech2vid.config import ModelConfig
from speech2vid.errors import WeightsError
from speech2vid.files import sha256_file
from speech2vid.model.speech2vid import Speech2Vid, build_model
from speech2vid.model.weights import load_weights, save_weights, synthetic_inputs

# The FP16 file must render what the FP32 one does: frames are 0..1, so 2e-3 is half a grey level.
MAX_FRAME_DIFF = 2e-3


@dataclass(frozen=True)
class PackReport:
    output: Path
    bytes_in: int
    bytes_out: int
    max_frame_diff: float  # FP16-rounded vs FP32 weights, over the check inputs (frames in 0..1); 0 for --fp32
    provenance: dict[str, str]
    half: bool = True

    def __str__(self) -> str:
        head = f"wrote {self.output} ({self.bytes_out / 1e6:.1f} MB, from {self.bytes_in / 1e6:.1f} MB)"
        if not self.half:
            return head + "; FP32 kept"
        return head + f"; FP16 vs FP32 frames: max abs diff {self.max_frame_diff:.2e} (limit {MAX_FRAME_DIFF:g})"


def run_provenance(weights: Path) -> dict[str, str]:
    """What the training run beside ``weights`` (its state.json) says about how they were made."""
    state_path = weights.parent / "state.json"
    if not state_path.is_file():
        return {}
    state = json.loads(state_path.read_text())
    config = state.get("config", {})
    return {
        "trained_kind": str(state.get("kind", "")),
        "trained_steps": str(state.get("global_step", "")),
        "trained_epochs": str(state.get("epoch", "")),
        "trained_data": Path(str(config.get("data", ""))).name,
        "train_config": json.dumps(config.get("train", {}), sort_keys=True),
    }


def check_inputs(model: Speech2Vid, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic MFCC windows and identity faces in the ranges the model sees."""
    return synthetic_inputs(model, n, torch.Generator().manual_seed(seed))


def frame_diff(a: Speech2Vid, b: Speech2Vid) -> float:
    mfcc, faces = check_inputs(a)
    with torch.no_grad():
        return float((a.eval()(mfcc, faces) - b.eval()(mfcc, faces)).abs().max())


def pack_weights(
    src: str | Path, dst: str | Path, cfg: ModelConfig, extra: dict[str, Any] | None = None, *, half: bool = True
) -> PackReport:
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise WeightsError(f"{dst} is the input file: write the packed weights elsewhere")
    if not dst.parent.is_dir():
        raise WeightsError(f"output folder {dst.parent} does not exist")
    full = build_model(cfg)
    load_weights(full, src)
    diff = 0.0
    if half:
        rounded = build_model(cfg)
        with torch.no_grad():
            rounded.load_state_dict(
                {k: v.half().float() if v.is_floating_point() else v for k, v in full.state_dict().items()}
            )
        diff = frame_diff(full, rounded)
        if not diff <= MAX_FRAME_DIFF:
            raise WeightsError(
                f"FP16 rounding changes frames of {src} by up to {diff:.2e} (limit {MAX_FRAME_DIFF:g}): "
                "pack with --fp32"
            )
    provenance = {
        **run_provenance(src),
        "source_sha256": sha256_file(src),
        **{str(k): str(v) for k, v in (extra or {}).items()},
    }
    save_weights(full, dst, half=half, extra=provenance)
    return PackReport(dst, src.stat().st_size, dst.stat().st_size, diff, provenance, half)
