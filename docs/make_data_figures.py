"""Draw the training-data figures of the README: ``python docs/make_data_figures.py``.

- docs/data_identities.png: procedural identities (seeds 0..11) and the photo mode on the bundled sample face;
- docs/data_mouth_audio.png: one synthetic video after ``prepare``: speech energy, the ground-truth jaw
  opening from the visemes, the inner-lip gap dlib measures on the prepared faces, and the targets.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speech2vid.assets import sample_face  # noqa: E402
from speech2vid.audio.io import read_audio, to_model_rate  # noqa: E402
from speech2vid.faces import read_photo  # noqa: E402
from speech2vid.training.datasets import read_shard  # noqa: E402
from speech2vid.training.prepare.speaker import frame_energy  # noqa: E402
from speech2vid.training.synth import make_corpus  # noqa: E402
from speech2vid.training.synth.face_render import FaceRenderer, random_identity  # noqa: E402
from speech2vid.training.synth.photo_anim import PhotoAnimator  # noqa: E402

HERE = Path(__file__).resolve().parent


def identities_figure(path: Path) -> None:
    tiles = []
    for seed in range(12):
        r = FaceRenderer(random_identity(seed))
        frame, _ = r.render(np.array([0.25 + 0.05 * (seed % 4), 0.1, 0.0, 0.5], np.float32), 0.0, seed * 0.3)
        tiles.append(cv2.resize(frame, (160, 160), interpolation=cv2.INTER_AREA))
    anim = PhotoAnimator(read_photo(sample_face()), 256, np.random.default_rng(0))
    shapes = [
        (0.0, 0.0, 0.0, 0.0),
        (0.35, 0.3, 0.0, 0.6),
        (0.8, 0.1, 0.0, 0.3),
        (0.15, -0.5, 1.0, 0.0),
        (0.06, 0.1, 0.0, 1.0),
        (0.6, 0.4, 0.0, 0.5),
    ]
    photo = [
        cv2.resize(anim.render(np.array(v, np.float32), 0.0, 0.4 * k)[0], (160, 160), interpolation=cv2.INTER_AREA)
        for k, v in enumerate(shapes)
    ]
    grid = np.concatenate([np.concatenate(tiles[:6], 1), np.concatenate(tiles[6:], 1), np.concatenate(photo, 1)], 0)
    fig, ax = plt.subplots(figsize=(9.6, 5.1), dpi=100)
    ax.imshow(grid)
    ax.set_axis_off()
    ax.set_title(
        "procedural identities (seeds 0-11, rows 1-2) and photo mode (row 3: jaw, width, rounding, teeth)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mouth_audio_figure(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_corpus(Path(tmp) / "ds", identities=3, minutes=0.3, seed=0)
        track = max(
            (t for p in sorted((root / "shards").glob("*.tar")) for t in read_shard(p)), key=lambda t: len(t.frames)
        )
        video = root / "source" / track.meta["video"]
        truth = np.load(str(video) + ".truth.npz")
        visemes = truth["visemes"]
        sig = to_model_rate(read_audio(video))
        energy = frame_energy(sig, len(visemes), 25.0)
        t = np.arange(len(visemes)) / 25.0
        fig, (a1, a2, a3) = plt.subplots(
            3, 1, figsize=(9.6, 6.4), dpi=100, gridspec_kw={"height_ratios": [1, 1.3, 1.1]}
        )
        a1.plot(np.arange(sig.size) / 16000, sig, lw=0.4, color="0.4")
        a1.set_ylabel("speech")
        a1.set_xlim(0, t[-1])
        a1.set_title(
            f"{track.meta['video']} (voice {truth['voice']}): prepared by the same pipeline as real video", fontsize=9
        )
        e = (energy - energy.min()) / (np.ptp(energy) + 1e-9)
        a2.plot(t, e, color="tab:orange", label="speech energy (log RMS per frame, scaled)")
        a2.plot(t, visemes[:, 0], color="tab:blue", label="ground-truth jaw opening (visemes)")
        gap = track.lip_gap / max(float(track.lip_gap.max()), 1e-6)
        a2.plot(
            track.frames / 25.0,
            gap,
            "o",
            ms=3,
            color="tab:green",
            label="inner-lip gap dlib finds on the prepared faces (scaled)",
        )
        a2.set_xlim(0, t[-1])
        a2.set_ylim(-0.05, 1.25)
        a2.legend(fontsize=7, loc="upper right", ncol=1)
        a2.set_xlabel("seconds")
        r_truth = np.corrcoef(visemes[track.frames, 0], energy[track.frames])[0, 1]
        r_gap = np.corrcoef(track.lip_gap, energy[track.frames])[0, 1]
        a2.text(
            0.01,
            0.95,
            f"corr(energy, truth) = {r_truth:.2f}   corr(energy, lip gap) = {r_gap:.2f}  (sampled frames)",
            transform=a2.transAxes,
            fontsize=7,
            va="top",
        )
        k = np.linspace(0, len(track.frames) - 1, 10).astype(int)
        strip = np.concatenate([track.faces[i, 1:110, 1:110] for i in k], axis=1)
        a3.imshow(strip)
        a3.set_xticks([109 * j + 54 for j in range(len(k))], [f"{track.frames[i] / 25:.1f} s" for i in k], fontsize=7)
        a3.set_yticks([])
        a3.set_title("109x109 targets (registered faces, central crop)", fontsize=9)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


if __name__ == "__main__":
    identities_figure(HERE / "data_identities.png")
    mouth_audio_figure(HERE / "data_mouth_audio.png")
    print("wrote docs/data_identities.png, docs/data_mouth_audio.png")
