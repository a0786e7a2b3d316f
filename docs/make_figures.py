"""Draw docs/pipeline.png: what speech2vid does to its inputs, stage by stage, on the bundled sample.

Run from the repository root: ``python docs/make_figures.py [--weights FILE|random]`` (default: the
bundled weights; random weights' frames are labelled as such).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from speech2vid.assets import sample_face, sample_speech
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.build_engines.build import ready_engine
from speech2vid.config import load_model_config, load_settings
from speech2vid.faces import TEMPLATE_ALIGNED, align_photo, read_photo
from speech2vid.faces.ibug68 import REGISTRATION_INDICES
from speech2vid.features.mfcc import mfcc
from speech2vid.features.windows import LEFT_PAD, speech_windows
from speech2vid.frames.render import video_frame
from speech2vid.model.weights import load_model

H = 224  # panel height, px


def panel(img: np.ndarray, title: str, width: int | None = None) -> np.ndarray:
    """RGB image scaled to height H with a caption bar underneath."""
    w = width or int(round(img.shape[1] * H / img.shape[0]))
    body = cv2.resize(img, (w, H), interpolation=cv2.INTER_AREA if img.shape[0] > H else cv2.INTER_NEAREST)
    bar = np.full((30, w, 3), 255, np.uint8)
    cv2.putText(bar, title, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return np.vstack([body, bar])


def arrow(height: int) -> np.ndarray:
    a = np.full((height, 36, 3), 255, np.uint8)
    y = H // 2
    cv2.arrowedLine(a, (4, y), (31, y), (90, 90, 90), 2, tipLength=0.4)
    return a


def heatmap(x: np.ndarray) -> np.ndarray:
    z = (x - x.min()) / max(1e-9, float(x.max() - x.min()))
    return cv2.cvtColor(cv2.applyColorMap((z * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=None, help="default: the bundled weights")
    ap.add_argument("-o", "--output", default="docs/pipeline.png")
    args = ap.parse_args()

    photo = read_photo(sample_face())
    face = align_photo(sample_face())
    shown = photo.copy()
    assert face.box is not None and face.landmarks is not None
    b = face.box
    cv2.rectangle(shown, (int(b.left), int(b.top)), (int(b.right), int(b.bottom)), (0, 200, 255), 2)
    for x, y in face.landmarks[list(REGISTRATION_INDICES)]:
        cv2.circle(shown, (int(x), int(y)), 2, (255, 60, 60), -1)
    aligned = cv2.resize(face.image, (H, H), interpolation=cv2.INTER_NEAREST)
    for x, y in TEMPLATE_ALIGNED[list(REGISTRATION_INDICES)] * (H / 112):
        cv2.circle(aligned, (int(x), int(y)), 2, (255, 60, 60), -1)

    signal = to_model_rate(read_audio(sample_speech()))
    cols = mfcc(np.concatenate([np.zeros(LEFT_PAD), signal]))[1:13]
    k = 30  # the frame whose window is highlighted (1.2 s: inside a word)
    spec = cv2.resize(heatmap(cols), (cols.shape[1] * 3, H), interpolation=cv2.INTER_NEAREST)
    x0 = 4 * k * 3
    cv2.rectangle(spec, (x0, 1), (x0 + 35 * 3, H - 2), (255, 255, 255), 2)
    window = cv2.resize(heatmap(speech_windows(signal)[k]), (H * 35 // 12, H), interpolation=cv2.INTER_NEAREST)

    settings = load_settings()
    loaded = load_model(load_model_config(settings.model), args.weights)
    label = "RANDOM WEIGHTS" if loaded.is_random else None
    windows = speech_windows(signal)
    with ready_engine(loaded, settings.engine) as engine:
        engine.set_identity([face.image])
        frames = engine.render(windows[[k - 6, k, k + 6]])
    outs = [video_frame(f, H, label) for f in frames]

    top = [
        panel(shown, "1 photo: face, 68 points"),
        panel(aligned, "2 registered 112x112"),
        panel(spec, "3 MFCC 12 x 100/s, speech; one frame's window", width=min(spec.shape[1], 560)),
        panel(window, "4 window: 12x35 (0.35 s)"),
    ]
    bottom = [panel(o, f"5 frame {k + d} ({'untrained' if label else loaded.label})") for o, d in zip(outs, (-6, 0, 6))]
    row1 = np.hstack([x for p in top for x in (p, arrow(p.shape[0]))][:-1])
    row2 = np.hstack([x for p in bottom for x in (p, np.full((p.shape[0], 12, 3), 255, np.uint8))][:-1])
    pad = np.full((row2.shape[0], row1.shape[1] - row2.shape[1], 3), 255, np.uint8)
    img = np.vstack([row1, np.full((10, row1.shape[1], 3), 255, np.uint8), np.hstack([row2, pad])])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.output, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.output} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()
