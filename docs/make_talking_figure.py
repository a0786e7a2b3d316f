"""Draw docs/talking.png: real photos speaking a real recording with the bundled weights.

    python docs/make_talking_figure.py [--weights FILE] [-o docs/talking.png]
    python docs/make_talking_figure.py --worst docs/eval_photos.json 5 -o docs/worst_photos.png

``--worst JSON N`` draws the N photos with the least lip motion (median gap std over their recordings) in an
``eval --photos --json`` result instead of the three default photos.

Each row is `speech2vid generate` run on one photo (default settings: the bundled weights, ONNX Runtime,
the photo at full resolution) with a real recording (LJ Speech LJ050-0131, public domain). Frames are
taken from the decoded MP4: one in the silence before the speech, then the widest and narrowest mouth
openings while speech is heard; below,
the speech's loudness and each row's lip gap over time, measured by dlib's pretrained 68-point landmarks
(inner-lip gap / inter-ocular distance, training/evaluation/visible.py), with the shown frames marked.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speech2vid.assets import sample_face  # noqa: E402
from speech2vid.audio.io import load_speech  # noqa: E402
from speech2vid.features.windows import FPS  # noqa: E402
from speech2vid.training.evaluation.visible import (  # noqa: E402
    Instruments,
    decode_video,
    frame_loudness,
    pearson,
    write_wav,
)

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = (ROOT / "data/eval/photos/06_london-024-neutral.jpg", ROOT / "data/eval/photos/01_obama.jpg", sample_face())
SPEECH = ROOT / "data/eval/speech/ljspeech_LJ050-0131_f.flac"


def worst_photos(result: Path, n: int) -> list[Path]:
    """The ``n`` photos of an ``eval --photos --json`` result whose lips move least (median gap std)."""
    import json

    pairs = json.loads(result.read_text())["pairs"]
    stds: dict[str, list[float]] = {}
    for p in pairs:
        stds.setdefault(p["photo"], []).append(p["model"]["gap_std"])
    order = sorted(stds, key=lambda name: float(np.median(stds[name])))
    return [ROOT / "data" / "eval" / "photos" / name for name in order[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=None, help="default: the bundled weights")
    ap.add_argument("--frames", type=int, default=7)
    ap.add_argument("--worst", nargs=2, metavar=("JSON", "N"), help="the N least moving photos of an eval result")
    ap.add_argument("-o", "--output", default="docs/talking.png")
    args = ap.parse_args()
    photos = worst_photos(Path(args.worst[0]), int(args.worst[1])) if args.worst else PHOTOS

    signal = np.concatenate([np.zeros(16000, np.float32), load_speech(SPEECH)[1], np.zeros(16000, np.float32)])
    inst = Instruments()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "speech.wav", signal)
        for photo in photos:
            out = Path(tmp) / "talk.mp4"
            cmd = [
                sys.executable,
                "-m",
                "speech2vid",
                "-q",
                "generate",
                "--face",
                str(photo),
                "--audio",
                str(wav),
                "-o",
                str(out),
            ]
            subprocess.run(cmd + (["--weights", args.weights] if args.weights else []), check=True)
            frames = list(decode_video(out))
            gaps = []
            boxes = []
            for f in frames:
                shape = inst.face(f)
                pts = inst.points(shape)
                from speech2vid.training.evaluation.visible import lip_gap_ratio

                gaps.append(lip_gap_ratio(pts))
                boxes.append(pts)
            rows.append((photo, frames, np.array(gaps), boxes))
    n = len(rows[0][1])
    loud = frame_loudness(signal, n)
    speaking = loud > np.percentile(loud, 95) - 25
    # Frames: one in the silence before the speech, then the widest and the narrowest openings while speech
    # is heard, by the rows' gaps each scaled to its own range (so no one photo decides).
    g = np.mean([(r[2] - r[2].min()) / max(float(np.ptp(r[2])), 1e-6) for r in rows], axis=0)
    inner = [i for i in range(2, n - 2) if speaking[i]]
    order = sorted(inner, key=lambda i: -g[i])
    chosen: list[int] = [int(np.argmax(speaking)) // 2]  # half way through the leading silence
    for candidates in (order, order[::-1]):  # half of the rest the widest, half the narrowest
        want = len(chosen) + (args.frames - 1) // 2 if candidates is order else args.frames
        for i in candidates:
            if len(chosen) < want and all(abs(i - j) >= 6 for j in chosen):
                chosen.append(i)
    shown = np.sort(np.array(chosen))

    row_h = min(0.2, 0.62 / len(rows))
    fig = plt.figure(figsize=(12, 9 * (0.4 + len(rows) * row_h)))
    w = 0.88 / len(shown)
    top = 1 - 0.06 * 9 / fig.get_figheight()
    for r, (photo, frames, gaps, marks) in enumerate(rows):
        for c, k in enumerate(shown):
            pts = marks[k]
            cx, cy = pts[48:68, 0].mean(), pts[48:68, 1].mean()
            iod = np.linalg.norm(pts[36:42].mean(axis=0) - pts[42:48].mean(axis=0))
            h = int(0.9 * iod)
            crop = frames[k][max(0, int(cy - h)) : int(cy + h), max(0, int(cx - 1.2 * h)) : int(cx + 1.2 * h)]
            a = fig.add_axes((0.07 + c * w, top - (r + 1) * row_h + 0.02, w * 0.96, row_h - 0.03))
            a.imshow(crop)
            a.set_xticks([])
            a.set_yticks([])
            a.set_xlabel(f"gap {gaps[k]:.2f}", fontsize=7)
            if r == 0:
                a.set_title(f"{k / FPS:.2f} s", fontsize=8)
            if c == 0:
                a.set_ylabel(Path(photo).stem[:18], fontsize=8)
    ax = fig.add_axes((0.07, 0.06, 0.86, top - len(rows) * row_h - 0.12))
    t = np.arange(n) / FPS
    ax.plot(t, np.maximum(loud, np.percentile(loud, 95) - 50), color="0.6", lw=1, label="speech loudness, dB (left)")
    ax.set_ylabel("loudness, dB")
    ax.set_xlabel("time, s")
    ax2 = ax.twinx()
    for photo, _, gaps, _ in rows:
        ax2.plot(t, gaps, lw=1.4, label=f"lip gap: {Path(photo).stem} (right)")
    ax2.set_ylabel("inner-lip gap / eye distance (dlib)")
    for k in shown:
        ax.axvline(k / FPS, color="0.85", lw=0.8, zorder=0)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [x.get_label() for x in lines], loc="upper left", fontsize=7, ncol=2)
    fig.suptitle(
        f"speech2vid generate, {'the weights given' if args.weights else 'bundled weights'}: "
        f"{'the least moving evaluation photos' if args.worst else 'real photos'} speaking a real recording "
        "(LJ Speech LJ050-0131)",
        fontsize=10,
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=80)
    floor = np.percentile(loud, 95) - 40
    for photo, _, gaps, _ in rows:
        print(
            f"{Path(photo).name}: lip gap std {gaps.std():.3f}, r with loudness "
            f"{pearson(gaps, np.maximum(loud, floor)):.2f}"
        )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
