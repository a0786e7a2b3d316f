"""Real speakers' lips moving talking photos (``synth --registered --real-motion``).

The fit is checked against its forward model (the mouth model draws lips from known parameters, the fit
must find them again), the lip tracks against an instrument nobody here trained (dlib's original 68-point
model on the same real frames), and the corpus against the tracks it was made from. The real clips are
two sentences of GRID speaker s4 (CC BY 4.0, docs/data.md, section 7).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech2vid.faces.mouth_model import BASE_SHAPE, OFFSET, mouth_shape
from speech2vid.training.datasets import open_dataset, read_shard
from speech2vid.training.synth.real_motion import fill_missing, fit_visemes, follow_lips

ROOT = Path(__file__).resolve().parents[1]
CLIPS = sorted((ROOT / "data" / "eval" / "videos").glob("grid_s4_*.mp4"))


def drawn(visemes: np.ndarray) -> np.ndarray:
    """The mouth model's 68 points for each row of visemes, in aligned 112 px (the canvas is x2 + OFFSET)."""
    return np.stack([(mouth_shape(BASE_SHAPE, v) - OFFSET) / 2.0 for v in visemes])


def test_the_fit_finds_the_parameters_the_mouth_model_drew() -> None:
    rng = np.random.default_rng(3)
    n = 60
    truth = np.zeros((n, 4), np.float32)
    truth[:, 0] = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(0.0, 0.7, n))  # some frames closed
    wide = rng.random(n) < 0.15
    rounded = ~wide & (rng.random(n) < 0.15)  # most frames neutral: the median width is the rest width
    truth[wide, 1] = rng.uniform(0.2, 1.0, wide.sum())
    truth[rounded, 2] = rng.uniform(0.2, 1.0, rounded.sum())
    truth[rounded, 1] = -0.5 * truth[rounded, 2]
    fitted = fit_visemes(drawn(truth))
    np.testing.assert_allclose(fitted[:, 0], truth[:, 0], atol=0.01)  # jaw opening
    np.testing.assert_allclose(fitted[:, 1], truth[:, 1], atol=0.02)  # width, as the table's narrow rounding
    np.testing.assert_allclose(fitted[:, 2], truth[:, 2], atol=0.02)
    assert np.all(fitted[rounded, 3] < fitted[~rounded, 3].min())  # rounded lips hide the teeth


def test_the_fit_is_relative_to_the_speakers_own_closed_mouth_and_size() -> None:
    truth = np.zeros((30, 4), np.float32)
    truth[10:20, 0] = 0.4
    pts = drawn(truth)
    # Lips that never quite touch under a landmark model, a face twice the size: the same parameters.
    pts[:, 55:60, 1] += 0.8
    pts[:, 65:68, 1] += 0.8
    np.testing.assert_allclose(fit_visemes(pts * 2.0)[:, 0], truth[:, 0], atol=0.01)


def test_frames_without_a_face_are_interpolated_from_their_neighbours() -> None:
    pts = np.zeros((5, 68, 2))
    pts[:, :, 0] = np.arange(5)[:, None] * 2.0
    found = np.array([True, False, True, False, True])
    filled = fill_missing(np.where(found[:, None, None], pts, 99.0), found)
    np.testing.assert_allclose(filled, pts)


@pytest.fixture(scope="module")
def tracks() -> list:
    found = [follow_lips(c) for c in CLIPS]
    assert all(t is not None for t in found)
    return found


def test_lip_tracks_agree_with_dlib_on_the_real_frames(tracks: list) -> None:
    """The fitted opening follows the inner-lip gap that dlib's original model measures on the same frames."""
    pytest.importorskip("dlib")
    from speech2vid.training.evaluation.real_video import measure_clip
    from speech2vid.training.evaluation.visible import Instruments

    inst = Instruments()
    for clip, track in zip(CLIPS, tracks):
        assert track.seconds == pytest.approx(2.4, abs=0.05) and track.signal.size == pytest.approx(
            2.4 * 16000, rel=0.02
        )
        real = measure_clip(clip, inst, lambda n: set(range(n)))
        gaps = np.array(
            [np.nan if p is None else np.mean(p[[65, 66, 67], 1] - p[[63, 62, 61], 1]) for p in real.points]
        )
        n = min(len(gaps), len(track.visemes))
        ok = ~np.isnan(gaps[:n])
        assert ok.sum() >= 50
        r = np.corrcoef(gaps[:n][ok], track.visemes[:n, 0][ok])[0, 1]
        assert r >= 0.8, f"{clip.name}: fitted opening vs dlib's lip gap r = {r:.2f}"


def test_a_corpus_of_photos_moved_by_real_lips(tmp_path: Path, tracks: list) -> None:
    from speech2vid.training.synth.real_motion import LIPS_SUFFIX, MOTION_DIR, load_lip_track
    from speech2vid.training.synth.registered import run_registered

    photos = sorted((ROOT / "data" / "train_photos").glob("canada_00*.jpg"))[:2]
    # 0.02 minutes over two photos is under a second each: no eSpeak clip, the real clips only.
    run_registered(tmp_path / "ds", photos, 0.02, 5, 0, val_photos=1, workers=1, progress=False, real_videos=CLIPS)
    ds = open_dataset(tmp_path / "ds")
    assert ds.samples > 0
    keys = []
    for shard in sorted((tmp_path / "ds" / "shards").glob("*.tar")):
        for track in read_shard(shard):
            keys.append(track.key)
            assert track.meta["voice"].startswith("real:grid_s4_")
            lips = load_lip_track(tmp_path / "ds" / MOTION_DIR / f"{track.meta['voice'][5:]}{LIPS_SUFFIX}")
            np.testing.assert_array_equal(track.visemes, lips.visemes[track.frames])
            assert track.landmarks is not None  # the warp head's motion truth
            # The rendered lips open where the real ones did.
            assert np.corrcoef(track.lip_gap, lips.visemes[track.frames, 0])[0, 1] > 0.9
    assert len(keys) == len(CLIPS) and all("-r" in k for k in keys)
    # A rerun follows no face again and writes the same corpus.
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ds" / MOTION_DIR).glob("*" + LIPS_SUFFIX)}
    run_registered(tmp_path / "ds", photos, 0.02, 5, 0, val_photos=1, workers=1, progress=False, real_videos=CLIPS)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ds" / MOTION_DIR).glob("*" + LIPS_SUFFIX)}
    assert before == after and len(before) == len(CLIPS)


@pytest.mark.parametrize("case", ["no folder", "without --registered"])
def test_real_motion_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    import subprocess
    import sys

    args = {
        "no folder": [
            "--registered",
            "--photos",
            str(ROOT / "data" / "eval" / "photos"),
            "--real-motion",
            str(tmp_path / "none"),
        ],
        "without --registered": ["--identities", "2", "--real-motion", str(ROOT / "data" / "eval" / "videos")],
    }[case]
    out = tmp_path / "ds"
    run = subprocess.run(
        [sys.executable, "-m", "speech2vid", "synth", "-o", str(out), "--minutes", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert len(run.stderr.strip().splitlines()) == 1 and "--real-motion" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()  # nothing written
