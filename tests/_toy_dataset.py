"""A tiny dataset in the real on-disk format (tar shards + index.json) whose mouths follow the audio.

Each identity has its own background and skin colours; a dark mouth ellipse opens with a smooth
random signal a(t) that also drives the "MFCC" windows (12 x 35 columns at 100 Hz, the frame at the
centre), so a model can only get the mouth right by listening. Used by the training and evaluation
tests: small enough for CI, with known mouth opening like the synthetic corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speech2vid.training.datasets import Track, write_shard
from speech2vid.training.datasets.index import RECORDS_DIR, build_index

STRIDE, MIN_GAP = 5, 25


def _opening(n_cols: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth 0..1 syllable-like signal at 100 Hz."""
    raw = rng.normal(size=n_cols // 10 + 4)
    a = np.interp(np.arange(n_cols) / 10.0, np.arange(raw.size), raw)
    a = np.convolve(a, np.hanning(9) / np.hanning(9).sum(), mode="same")
    return np.clip(0.5 + 0.45 * a / (np.abs(a).max() + 1e-9), 0.0, 1.0)


def _face(bg: np.ndarray, skin: np.ndarray, opening: float) -> np.ndarray:
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    img = np.empty((112, 112, 3), np.float32)
    img[:] = bg
    head = ((xx - 56) / 38) ** 2 + ((yy - 58) / 48) ** 2 <= 1
    img[head] = skin
    for ex in (40, 72):
        img[((xx - ex) / 6) ** 2 + ((yy - 45) / 4) ** 2 <= 1] = (30, 30, 40)
    mouth = ((xx - 56) / 16) ** 2 + ((yy - 82) / (1.5 + 11 * opening)) ** 2 <= 1
    img[mouth] = (60, 10, 20)
    return img.clip(0, 255).astype(np.uint8)


# A model geometry small enough to train in seconds, for the training and evaluation tests.
TINY_MODEL = {
    "name": "tiny",
    "description": "test-only geometry",
    "identity_faces": 5,
    "audio": {"channels": [8, 8, 16, 16, 16], "fc6": 32, "embedding": 16},
    "identity": {"channels": [8, 16, 16, 16, 16], "fc6": 32, "embedding": 16},
    "decoder": {"conv8": 16, "conv1": [16, 16, 16], "conv2": 16, "conv3": [16, 8], "conv4": 8, "conv5": [8, 8]},
    "deblur": {"layers": 3, "width": 8},
}


def make_toy_dataset(root: Path, *, train_ids: int = 4, val_ids: int = 2, frames: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pattern = rng.normal(size=12).astype(np.float32)
    records = []
    for i in range(train_ids + val_ids):
        split = "train" if i < train_ids else "val"
        bg, skin = rng.uniform(40, 220, 3), rng.uniform(120, 230, 3)
        n_cols = frames * STRIDE * 4 + 40
        a = _opening(n_cols, rng)
        frame_idx = np.arange(frames) * STRIDE + 5
        centres = frame_idx * 4 + 20  # 4 MFCC columns per 25 fps frame
        mfcc = np.stack([pattern[:, None] * 10 * a[c - 17 : c + 18][None, :] for c in centres]).astype(np.float32)
        mfcc += rng.normal(scale=0.5, size=mfcc.shape).astype(np.float32)
        opening = a[centres].astype(np.float32)
        faces = np.stack([_face(bg, skin, float(o)) for o in opening])
        visemes = np.stack([opening, 0.5 + 0 * opening, 0 * opening, opening > 0.5], axis=1).astype(np.float32)
        key = f"id{i:02d}_v0_t0"
        track = Track(
            key=key,
            faces=faces,
            mfcc=mfcc,
            frames=frame_idx.astype(np.int32),
            is_target=np.ones(frames, bool),
            mouth_open=opening,
            visemes=visemes,
            lip_gap=opening * 10,
            meta={"video": f"id{i:02d}_v0.mp4", "group": f"id{i:02d}"},
        )
        shard = f"shards/id{i:02d}_v0.tar"
        write_shard(root / shard, [track])
        records.append(
            {
                "video": f"id{i:02d}_v0.mp4",
                "status": "ok",
                "split": split,
                "shard": shard,
                "group": f"id{i:02d}",
                "samples": frames,
                "tracks": [{"key": key, "kept": True}],
                "track_seconds": frames * STRIDE / 25.0,
            }
        )
    (root / RECORDS_DIR).mkdir(parents=True, exist_ok=True)
    for r in records:
        (root / RECORDS_DIR / f"{Path(r['video']).stem}.json").write_text(json.dumps(r))
    build_index(root, {"sample_stride": STRIDE, "identity_min_gap": MIN_GAP}, {"source": "tests/_toy_dataset.py"})
    return root
