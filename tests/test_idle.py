"""Idle motion (frames/idle.py), measured on real faces with dlib's 68 landmarks.

The frame is the bundled photo's aligned face, cropped like the network's output (109x109): what a
well-trained model shows in silence. Eyes are found with the photo's own landmarks (as the live loop
does); the measurements use dlib's landmarks on the animated frames, upscaled to 256 px like a sink.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from speech2vid.assets import sample_face
from speech2vid.faces import align_photo, transform_points
from speech2vid.frames.idle import (
    BLINK_INTERVAL_S,
    BLINK_PROFILE,
    FPS,
    RAMP_FRAMES,
    IdleAnimator,
    Pose,
    animate,
    close_eyes,
    eye_boxes,
    sway,
)
from speech2vid.model.io_spec import CROP_OFFSET, OUTPUT_SIZE

dlib_models = pytest.importorskip("speech2vid.training.evaluation.dlib_models")

SHOWN = 256  # px: frames are measured at a sink's size
# dlib's landmarks are whole pixels and its shape model moves every point a little when the eyes change:
# closing the eyes of the unchanged mouth moved the measured inner-lip gap by up to 1.7 px at 256 px
# (measured; 0.7 px of the 109 px frame). A mouth that opened would move it by several pixels.
GAP_TOLERANCE_PX = 2.0


def ear(p: np.ndarray) -> float:
    """Eye aspect ratio (Soukupova & Cech 2016), mean of both eyes, from (68, 2) landmarks."""

    def one(e: np.ndarray) -> float:
        return float((np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3])))

    return (one(p[36:42]) + one(p[42:48])) / 2


def mouth_gap(p: np.ndarray) -> float:
    """Inner-lip opening: mean distance of the three upper/lower inner-lip pairs (px)."""
    return float(np.mean([np.linalg.norm(p[61 + i] - p[67 - i]) for i in range(3)]))


def shown(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(
        (np.clip(frame, 0, 1) * 255).round().astype(np.uint8), (SHOWN, SHOWN), interpolation=cv2.INTER_CUBIC
    )


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, tuple]:
    """(the 109x109 float frame, its eye boxes)."""
    a = align_photo(sample_face())
    crop = a.image[CROP_OFFSET : CROP_OFFSET + OUTPUT_SIZE, CROP_OFFSET : CROP_OFFSET + OUTPUT_SIZE]
    points = transform_points(a.transform, a.landmarks) - CROP_OFFSET
    return crop.astype(np.float32) / 255, eye_boxes(points)


@pytest.fixture(scope="module")
def landmarker(face):  # type: ignore[no-untyped-def]
    """dlib's 68 landmarks of a shown frame, with the face box found once on the open-eyed frame."""
    box = dlib_models.hog_faces(shown(face[0]))[0]
    return lambda frame: dlib_models.dlib_landmarks_68(shown(frame), box)


def test_eyes_close_and_nothing_else_changes(face, landmarker) -> None:  # type: ignore[no-untyped-def]
    frame, eyes = face
    ears = [ear(landmarker(close_eyes(frame, eyes, c))) for c in (0.0, 0.5, 1.0)]
    assert ears[0] > 0.2, ears  # open eyes on the photo
    assert ears[2] < 0.6 * ears[0] and ears[2] < ears[1] < ears[0], ears
    shut = close_eyes(frame, eyes, 1.0)
    below_eyes = int(np.ceil(max(e.lower for e in eyes))) + 2
    np.testing.assert_array_equal(shut[below_eyes:], frame[below_eyes:])  # the mouth's pixels are not touched
    assert abs(mouth_gap(landmarker(shut)) - mouth_gap(landmarker(frame))) <= GAP_TOLERANCE_PX


def test_sway_is_rigid_and_small(face, landmarker) -> None:  # type: ignore[no-untyped-def]
    frame, _ = face
    p0 = landmarker(frame)
    p1 = landmarker(sway(frame, 1.0, 0.6, 0.6))
    shift = (p1 - p0).mean(axis=0) * OUTPUT_SIZE / SHOWN
    assert 0.5 < shift[0] < 1.5 and 0.2 < shift[1] < 1.0, shift  # the face moved by about (1, 0.6) px
    assert abs(mouth_gap(p1) - mouth_gap(p0)) <= GAP_TOLERANCE_PX  # the mouth keeps its shape
    assert sway(frame, 0, 0, 0) is not frame and np.array_equal(sway(frame, 0, 0, 0), frame)


def _run(animator: IdleAnimator, pattern: list[bool]) -> list[Pose]:
    return [animator.step(idle) for idle in pattern]


def test_animator_blinks_in_silence_only_at_natural_intervals() -> None:
    pattern = [False] * 50 + [True] * 30 * FPS + [False] * 10 * FPS + [True] * 10 * FPS
    a = IdleAnimator(seed=3)
    poses = _run(a, pattern)
    closure = np.array([p.closure for p in poses])
    starts = np.array(a.blinks)
    assert len(starts) >= 30 / BLINK_INTERVAL_S[1] + 10 / BLINK_INTERVAL_S[1] - 2
    for s in starts:
        assert all(pattern[s - RAMP_FRAMES : s + 1]), f"blink at frame {s} outside silence"
        np.testing.assert_array_equal(closure[s : s + len(BLINK_PROFILE)], BLINK_PROFILE)
    gaps = np.diff(starts) / FPS
    within = gaps[gaps < 10]  # blinks in one silent stretch
    assert (
        within.min() >= BLINK_INTERVAL_S[0] - 1 / FPS and within.max() <= BLINK_INTERVAL_S[1] + len(BLINK_PROFILE) / FPS
    )
    # no blink during speech (after a started one has finished)
    speech = np.zeros(len(pattern), dtype=bool)
    speech[:50] = True
    speech[50 + 30 * FPS + len(BLINK_PROFILE) : 50 + 40 * FPS] = True
    assert not closure[speech].any()


def test_animator_sway_fades_without_jumps() -> None:
    pattern = [False] * 20 + [True] * 200 + [False] * 100
    poses = _run(IdleAnimator(seed=0), pattern)
    dx = np.array([p.dx for p in poses])
    dy = np.array([p.dy for p in poses])
    tilt = np.array([p.tilt_deg for p in poses])
    assert not dx[:20].any() and not dy[:20].any()  # speech: no sway
    assert np.abs(dx[20:220]).max() > 0.5 and np.abs(dy[20:220]).max() > 0.3  # silence: a few tenths to a pixel
    assert not dx[220 + RAMP_FRAMES :].any() and not tilt[220 + RAMP_FRAMES :].any()  # speech again: still
    step = np.abs(np.diff(np.stack([dx, dy]), axis=1)).max()
    assert step < 0.3, f"largest frame-to-frame move {step:.2f} px: a jump"


def test_blinks_appear_on_the_frames_in_silence_not_in_speech(face, landmarker) -> None:  # type: ignore[no-untyped-def]
    """The whole path: poses applied to a sequence of frames, measured back with dlib on every frame."""
    frame, eyes = face
    pattern = [False] * 25 + [True] * 8 * FPS + [False] * 2 * FPS
    a = IdleAnimator(seed=1)
    frames = [animate(frame, pose, eyes) for pose in _run(a, pattern)]
    marks = [landmarker(f) for f in frames]
    ears = np.array([ear(m) for m in marks])
    gaps = np.array([mouth_gap(m) for m in marks])
    open_ear = float(np.median(ears))
    dips = np.flatnonzero(ears < 0.75 * open_ear)
    assert len(a.blinks) >= 1
    blink_frames = {s + i for s in a.blinks for i, c in enumerate(BLINK_PROFILE) if c >= 0.8}
    assert blink_frames <= set(dips.tolist()), (sorted(blink_frames), dips.tolist())  # every shut frame is seen
    allowed = {s + i for s in a.blinks for i in range(len(BLINK_PROFILE))}
    assert set(dips.tolist()) <= allowed  # and nothing else dips
    open_gap = mouth_gap(landmarker(frame))
    assert np.abs(gaps - open_gap).max() <= GAP_TOLERANCE_PX, (
        gaps.min(),
        open_gap,
        gaps.max(),
    )  # the mouth never opens
