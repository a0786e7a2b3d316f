"""``speech2vid eval``: score a model on the val split (held-out identities) against two baselines.

Methods, each producing a 109x109 face per val sample:

* ``model``: the full model (generator + deblur) on the sample's MFCC window and identity faces;
* ``still image``: the first identity image, centrally cropped, repeated (a face that never moves);
* ``audio zeroed``: the model with its MFCC input set to zero (identity alone, no speech);

Each track is rendered from one set of identity images (its first sample's), as ``generate`` does.
* ``ground truth``: the real target face (the reference the helper networks are judged by).

Per method: PSNR and SSIM against the ground truth; mouth agreement = Pearson correlation, per track
over time, between the mouth opening the reader measures on the faces and the corpus' known opening
(mean over tracks, weighted by length); LSE-D / LSE-C of the sync network over audio offsets of
-max..max frames, in steps of the dataset's sample stride (mean over tracks).
``audio_effect``: mean |model - audio zeroed| per pixel (0..1 scale), over the whole face and over the
mouth band (training/loss.py): 0 means the output ignores the audio.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from speech2vid.config import EvalConfig
from speech2vid.files import atomic_path
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE
from speech2vid.model.speech2vid import Speech2Vid
from speech2vid.training.datasets import ShardedSamples, open_dataset
from speech2vid.training.evaluation.helpers import MouthReader, SyncNet, helpers
from speech2vid.training.evaluation.metrics import lse, offset_distances, pearson, psnr, ssim
from speech2vid.training.loss import mouth_band_top

log = logging.getLogger("speech2vid.eval")
METHODS = ("model", "still image", "audio zeroed", "ground truth")


@dataclass
class _Acc:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    mouth: dict[str, list[tuple[int, float, float]]] = field(default_factory=lambda: defaultdict(list))
    video: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class MethodScore:
    method: str
    psnr: float
    ssim: float
    mouth_agreement: float  # NaN without ground-truth mouth opening
    lse_d: float
    lse_c: float
    samples: int


def _track(key: str) -> str:
    return key.rsplit("/", 1)[0]


def evaluate(
    model: Speech2Vid,
    data: str | Path,
    cfg: EvalConfig,
    *,
    max_samples: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    index = open_dataset(data)
    reader, sync = helpers(data, cfg, cache_dir=cache_dir, progress=progress)
    model = model.eval()
    ds = ShardedSamples(
        data, "val", identity_faces=model.cfg.identity_faces, shuffle=False, seed=cfg.seed, rank=0, world_size=1
    )
    acc = {m: _Acc() for m in METHODS}
    audio: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
    truth: dict[str, dict[int, float]] = defaultdict(dict)
    still: dict[str, torch.Tensor] = {}
    effect = [0.0, 0.0]  # sums of mean |model - audio zeroed| per sample: whole face, mouth band
    top = mouth_band_top()
    seen = 0
    total = min(len(ds), max_samples) if max_samples else len(ds)
    bar = tqdm(total=total, desc="eval", disable=not progress, unit="sample")
    o, s = CROP_OFFSET, OUTPUT_SIZE
    with torch.no_grad():
        for b in DataLoader(ds, batch_size=cfg.batch, num_workers=min(2, os.cpu_count() or 1)):
            n = len(b["key"]) if max_samples is None else min(len(b["key"]), max_samples - seen)
            if n <= 0:
                break
            mfcc = b["mfcc"][:n].float()
            faces = b["identity"][:n].float()
            for i, k in enumerate(b["key"][:n]):  # one set of identity images per track, as in real use
                faces[i] = still.setdefault(_track(k), faces[i].clone())
            gt = b["target"][:n].float() / 255.0
            outs = {
                "model": model(mfcc, faces),
                "still image": faces[:, 0:3, o : o + s, o : o + s] / 255.0,
                "audio zeroed": model(torch.zeros_like(mfcc), faces),
                "ground truth": gt,
            }
            diff = (outs["model"] - outs["audio zeroed"]).abs()
            effect[0] += float(diff.mean(dim=(1, 2, 3)).sum())
            effect[1] += float(diff[:, :, top:].mean(dim=(1, 2, 3)).sum())
            keys, frames = b["key"][:n], b["frame"][:n].tolist()
            emb_a = sync.embed_audio(mfcc).numpy()
            for i, (k, f) in enumerate(zip(keys, frames)):
                audio[_track(k)].append((f, emb_a[i]))
                truth[_track(k)][f] = float(b["mouth_open"][i])
            for m, img in outs.items():
                a = acc[m]
                a.psnr += psnr(img, gt).tolist()
                a.ssim += ssim(img, gt).tolist()
                emb_v = sync.embed_video(img).numpy()
                opening = reader(img).numpy() if reader is not None else np.full(n, np.nan)
                for i, (k, f) in enumerate(zip(keys, frames)):
                    a.video[_track(k)].append((f, emb_v[i]))
                    a.mouth[_track(k)].append((f, float(opening[i]), truth[_track(k)][f]))
            seen += n
            bar.update(n)
    bar.close()
    if seen == 0:
        raise ValueError(f"the val split of {data} yielded no samples")
    max_shift = cfg.max_offset // index.sample_stride
    scores = []
    for m in METHODS:
        a = acc[m]
        corr_sum = corr_w = 0.0
        d_sum = c_sum = 0.0
        n_tracks = 0
        for track, rows in a.mouth.items():
            rows.sort()
            got, want = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
            if reader is not None and np.isfinite(want).all() and len(rows) >= 3:
                corr_sum += pearson(got, want) * len(rows)
                corr_w += len(rows)
            vid = np.stack([e for _, e in sorted(a.video[track], key=lambda r: r[0])])
            aud = np.stack([e for _, e in sorted(audio[track], key=lambda r: r[0])])
            if len(vid) > 2 * max_shift:
                dist, conf, _ = lse(offset_distances(vid, aud, max_shift))
                d_sum, c_sum, n_tracks = d_sum + dist, c_sum + conf, n_tracks + 1
        scores.append(
            MethodScore(
                m,
                float(np.mean(a.psnr)) if m != "ground truth" else math.inf,
                float(np.mean(a.ssim)),
                corr_sum / corr_w if corr_w else math.nan,
                d_sum / n_tracks if n_tracks else math.nan,
                c_sum / n_tracks if n_tracks else math.nan,
                len(a.psnr),
            )
        )
    return {
        "data": str(data),
        "split": "val",
        "samples": seen,
        "tracks": len(audio),
        "offsets_frames": [k * index.sample_stride for k in range(-max_shift, max_shift + 1)],
        "methods": [s.__dict__ for s in scores],
        "audio_effect": {"mean_abs": effect[0] / seen, "mouth_band_mean_abs": effect[1] / seen},
    }


def beats_baselines(result: dict[str, Any]) -> dict[str, bool]:
    """Whether the model beats both baselines on mouth agreement (higher) and LSE-D (lower) / LSE-C (higher)."""
    by = {m["method"]: m for m in result["methods"]}
    me, base = by["model"], [by["still image"], by["audio zeroed"]]
    return {
        "mouth_agreement": all(me["mouth_agreement"] > b["mouth_agreement"] for b in base),
        "lse_d": all(me["lse_d"] < b["lse_d"] for b in base),
        "lse_c": all(me["lse_c"] > b["lse_c"] for b in base),
    }


def format_table(result: dict[str, Any]) -> str:
    head = f"{'method':<14} {'PSNR dB':>8} {'SSIM':>6} {'mouth r':>8} {'LSE-D':>7} {'LSE-C':>7}"
    lines = [
        f"val split of {result['data']}: {result['samples']} samples, {result['tracks']} tracks; "
        f"sync offsets {result['offsets_frames'][0]}..{result['offsets_frames'][-1]} frames",
        head,
        "-" * len(head),
    ]
    for m in result["methods"]:
        p = "     inf" if math.isinf(m["psnr"]) else f"{m['psnr']:8.2f}"
        lines.append(
            f"{m['method']:<14} {p} {m['ssim']:6.3f} {m['mouth_agreement']:8.3f} {m['lse_d']:7.3f} {m['lse_c']:7.3f}"
        )
    if "audio_effect" in result:
        e = result["audio_effect"]
        lines.append(f"mean |model - audio zeroed|: {e['mean_abs']:.4f} (mouth band {e['mouth_band_mean_abs']:.4f})")
    wins = beats_baselines(result)
    lines.append("model beats both baselines on: " + (", ".join(k for k, v in wins.items() if v) or "nothing"))
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps({**result, "beats_baselines": beats_baselines(result)}, indent=1, allow_nan=True) + "\n"
        )


__all__ = ["evaluate", "format_table", "write_json", "beats_baselines", "MouthReader", "SyncNet", "METHODS"]
