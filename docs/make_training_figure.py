"""Draw docs/training.png: a run's validation L1 curve and one held-out track as each method renders it.

python docs/make_training_figure.py RUN_DIR DATASET_DIR WEIGHTS [--model lite] [-o docs/training.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from speech2vid.config import load_model_config  # noqa: E402
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE  # noqa: E402
from speech2vid.model.weights import load_model  # noqa: E402
from speech2vid.training.datasets import ShardedSamples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("data")
    ap.add_argument("weights")
    ap.add_argument("--model", default="lite")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("-o", "--output", default="docs/training.png")
    args = ap.parse_args()

    recs = [json.loads(x) for x in (Path(args.run) / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in recs if r["event"] == "step"]
    epochs = [r for r in recs if r["event"] == "epoch"]
    model = load_model(load_model_config(args.model), args.weights).model
    ds = ShardedSamples(args.data, "val", identity_faces=model.cfg.identity_faces, shuffle=False, rank=0, world_size=1)
    rows: dict[str, list[np.ndarray]] = {"ground truth": [], "model": [], "audio zeroed": [], "still image": []}
    o, s = CROP_OFFSET, OUTPUT_SIZE
    with torch.no_grad():
        for i, x in enumerate(ds):
            if i % 2 or len(rows["model"]) >= args.frames:
                if len(rows["model"]) >= args.frames:
                    break
                continue
            mfcc = torch.from_numpy(x["mfcc"])[None]
            if i == 0:  # one set of identity images for the whole track, as in real use
                identity = x["identity"]
            faces = torch.from_numpy(identity)[None].float()
            rows["ground truth"].append(x["target"].transpose(1, 2, 0))
            for name, m in (("model", mfcc), ("audio zeroed", torch.zeros_like(mfcc))):
                rows[name].append((model(m, faces)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
            rows["still image"].append(identity[0:3, o : o + s, o : o + s].transpose(1, 2, 0))

    fig = plt.figure(figsize=(12, 7.5))
    ax = fig.add_axes((0.07, 0.62, 0.88, 0.33))
    ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="train L1 (batch)")
    ax.plot([r["step"] for r in epochs], [r["val_l1"] for r in epochs], "o-", label="val L1 (held-out identity)")
    ax.set_xlabel("step")
    ax.set_ylabel("L1")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    for r, (name, imgs) in enumerate(rows.items()):
        for c, img in enumerate(imgs):
            a = fig.add_axes((0.07 + c * 0.88 / args.frames, 0.43 - r * 0.135, 0.88 / args.frames * 0.95, 0.13))
            a.imshow(img)
            a.set_xticks([])
            a.set_yticks([])
            if c == 0:
                a.set_ylabel(name, fontsize=8)
    fig.savefig(args.output, dpi=90)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
