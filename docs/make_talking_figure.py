"""Draw docs/talking.png: the bundled weights speaking the bundled sample speech, frame by frame.

    python docs/make_talking_figure.py [--weights FILE] [-o docs/talking.png]

Rows: the held-out synthetic face (an identity the weights never saw in training) and the real photo,
each rendered through the ONNX Runtime engine as `speech2vid generate` does; below, the speech's
loudness and each row's mouth motion over time (mean |frame - the same face with the audio zeroed|
in the mouth band), with the shown frames marked.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speech2vid.assets import sample_face, sample_speech, sample_synth_face  # noqa: E402
from speech2vid.audio.io import read_audio, to_model_rate  # noqa: E402
from speech2vid.config import load_model_config, load_settings  # noqa: E402
from speech2vid.build_engines.build import ready_engine  # noqa: E402
from speech2vid.faces import align_photo  # noqa: E402
from speech2vid.features.windows import n_frames_for, speech_windows  # noqa: E402
from speech2vid.model.weights import load_model  # noqa: E402
from speech2vid.training.loss import mouth_band_top  # noqa: E402

FPS = 25


def frame_loudness(signal: np.ndarray, rate: int, n: int) -> np.ndarray:
    """RMS of the 0.35 s of speech each frame's MFCC window covers, in dBFS."""
    half = int(0.175 * rate)
    centres = (np.arange(n) * rate / FPS).astype(int)
    rms = np.array([np.sqrt(np.mean(signal[max(0, c - half):c + half] ** 2) + 1e-12) for c in centres])
    return np.maximum(20 * np.log10(rms), -60.0)  # digital silence would squash the plot


def peaks_and_troughs(motion: np.ndarray, speaking: np.ndarray, count: int) -> np.ndarray:
    """Frames to show: the strongest local maxima and the deepest local minima of the mouth motion
    while speech is heard (a pause would trivially give a closed mouth), at least 5 frames apart."""
    inner = [i for i in range(2, len(motion) - 2) if speaking[i - 2:i + 3].all()]
    peaks = sorted((i for i in inner if (motion[i] >= motion[i - 2:i + 3]).all()), key=lambda i: -motion[i])
    troughs = sorted((i for i in inner if (motion[i] <= motion[i - 2:i + 3]).all()), key=lambda i: motion[i])
    chosen: list[int] = []
    for group, want in ((peaks, count // 2), (troughs, count - count // 2)):
        taken = 0
        for i in group:
            if taken < want and all(abs(i - j) >= 5 for j in chosen):
                chosen.append(i)
                taken += 1
    return np.sort(np.array(chosen, dtype=int))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=None, help="default: the bundled weights")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("-o", "--output", default="docs/talking.png")
    args = ap.parse_args()

    settings = load_settings()
    loaded = load_model(load_model_config(settings.model), args.weights)
    signal = to_model_rate(read_audio(sample_speech()))
    n = n_frames_for(len(signal))
    windows = speech_windows(signal, n)
    band = mouth_band_top()
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with ready_engine(loaded, settings.engine) as engine:
        for name, photo in (("held-out synthetic face", sample_synth_face()), ("real photo", sample_face())):
            engine.set_identity([align_photo(photo).image])
            frames = engine.render(windows)  # (n, 109, 109, 3) in [0, 1]
            still = engine.render(np.zeros_like(windows[:1]))[0]
            motion = 255 * np.abs(frames[:, band:] - still[band:]).mean(axis=(1, 2, 3))
            rows[name] = (frames, motion)
    loud = frame_loudness(signal, 16000, n)
    shown = peaks_and_troughs(rows["held-out synthetic face"][1], loud > loud.max() - 15, args.frames)

    fig = plt.figure(figsize=(12, 7.2))
    w = 0.88 / args.frames
    for r, (name, (frames, _)) in enumerate(rows.items()):
        for c, k in enumerate(shown):
            a = fig.add_axes((0.07 + c * w, 0.70 - r * 0.25, w * 0.96, 0.24))
            a.imshow(frames[k][45:105, 12:97])  # the lower face, where the audio acts
            a.set_xticks([])
            a.set_yticks([])
            a.set_xlabel(f"{rows[name][1][k]:.1f}", fontsize=7)  # this frame's mouth motion
            if r == 0:
                a.set_title(f"{k / FPS:.2f} s", fontsize=8)
            if c == 0:
                a.set_ylabel(name, fontsize=8)
    ax = fig.add_axes((0.07, 0.07, 0.86, 0.33))
    t = np.arange(n) / FPS
    ax.plot(t, loud, color="0.5", lw=1, label="speech loudness, dBFS (left)")
    ax.set_ylabel("loudness, dBFS")
    ax.set_xlabel("time, s")
    ax2 = ax.twinx()
    for name, (_, motion) in rows.items():
        ax2.plot(t, motion, lw=1.5, label=f"mouth motion: {name} (right)")
    ax2.set_ylabel("mouth motion, grey levels")
    for k in shown:
        ax.axvline(k / FPS, color="0.85", lw=0.8, zorder=0)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [x.get_label() for x in lines], loc="upper right", fontsize=8)
    fig.suptitle(f"bundled weights ({loaded.label}) speaking assets/sample_speech.wav", fontsize=10)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=90)
    for name, (_, motion) in rows.items():
        r = np.corrcoef(motion, loud)[0, 1]
        print(f"{name}: mouth motion {motion.mean():.2f} grey levels on average, r with loudness {r:.2f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
