"""Speech, not noise, moves the lips; the face is alive in silence. The live loop with the real ONNX Runtime
engine and the bundled trained ``lite`` weights, measured on its output frames with dlib's landmarks.

Sources are ``file://`` as fast as possible (every slot rendered, no timing in the assertions); the
noises (tests/_noise.py) and the sample speech are all at -30 dBFS RMS.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
from _noise import BABBLE_VOICES, LEVEL_DBFS, at_level, babble, coloured_noise

from speech2vid.assets import sample_face, sample_speech
from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.config import EngineConfig, LiveConfig, VadConfig, load_model_config
from speech2vid.faces import align_photo
from speech2vid.frames.idle import BLINK_PROFILE, photo_eyes
from speech2vid.model.io_spec import OUTPUT_SIZE
from speech2vid.runtime.avatar import Avatar
from speech2vid.runtime.live import run_live
from speech2vid.sinks.live import FrameInfo, LiveSink
from speech2vid.sources.live import FileSource

dlib_models = pytest.importorskip("speech2vid.training.evaluation.dlib_models")

SHOWN = 256  # px: landmarks are measured on frames scaled like a sink's
# The sample speech moves the trained lite model's inner-lip gap by more than this (at 256 px); a frame
# sequence that does not move has a range of exactly 0 (dlib is deterministic on identical images).
MIN_SPEECH_MOUTH_RANGE_PX = 2.0
NOISE_SECONDS = 4.0
# Mouth region after undoing the sway, mean |difference| from the still face: 3.7/255 on average and 4.8/255
# at most (measured with the bundled weights: bilinear interpolation twice of a sharp photo-textured mouth);
# speech changes the same region by 11.5/255 (median, measured), so the test also wants speech >= 2x the worst.
MOUTH_RESIDUAL_MAX = 5.5 / 255


class RecordingSink(LiveSink):
    description = "recording"

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.infos: list[FrameInfo] = []

    def write(self, frame: np.ndarray, info: FrameInfo) -> None:
        self.frames.append(np.array(frame))
        self.infos.append(info)


@pytest.fixture(scope="module")
def engine(engine_cache):  # type: ignore[no-untyped-def]
    from speech2vid.engine.factory import make_engine
    from speech2vid.model.ref import model_ref

    eng = make_engine(model_ref(load_model_config("lite"), None), EngineConfig(cache_dir=str(engine_cache)))
    with eng:
        yield eng


@pytest.fixture(scope="module")
def face():  # type: ignore[no-untyped-def]
    return align_photo(sample_face())


def _shown(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(
        (np.clip(frame, 0, 1) * 255).round().astype(np.uint8), (SHOWN, SHOWN), interpolation=cv2.INTER_CUBIC
    )


class Landmarks:
    """dlib's 68 points of shown frames, the face box found once (on the first frame) and reused."""

    def __init__(self, first: np.ndarray) -> None:
        boxes = dlib_models.hog_faces(_shown(first))
        assert boxes, "no face on the engine's output: the trained weights are not loaded?"
        self.box = boxes[0]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return dlib_models.dlib_landmarks_68(_shown(frame), self.box)


def mouth_gap(p: np.ndarray) -> float:
    return float(np.mean([np.linalg.norm(p[61 + i] - p[67 - i]) for i in range(3)]))


def ear(p: np.ndarray) -> float:
    def one(e: np.ndarray) -> float:
        return float((np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3])))

    return (one(p[36:42]) + one(p[42:48])) / 2


def _wav(path: Path, x: np.ndarray) -> str:
    sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    return str(path)


def _run(engine, face, wav: str, cfg: LiveConfig, vad: VadConfig | None = None):  # type: ignore[no-untyped-def]
    rec = RecordingSink()
    report = run_live(
        engine, Avatar.bare([face.image], photo_eyes(face)), FileSource(wav, 320, realtime=False), [rec], cfg, vad=vad
    )
    return report, rec


def _speech() -> np.ndarray:
    return at_level(to_model_rate(read_audio(sample_speech())), LEVEL_DBFS)


NOISES = {
    "pink": lambda n: coloured_noise(n, 1.0, 10),
    "brown": lambda n: coloured_noise(n, 2.0, 11),
    "babble": lambda n: babble(n, BABBLE_VOICES, 12),
}


@pytest.mark.parametrize("kind", sorted(NOISES))
def test_noise_keeps_the_mouth_still_and_closed(kind: str, engine, face, tmp_path) -> None:  # type: ignore[no-untyped-def]
    noise = at_level(NOISES[kind](round(NOISE_SECONDS * SAMPLE_RATE)), LEVEL_DBFS)
    wav = _wav(tmp_path / f"{kind}.wav", noise)
    report, rec = _run(engine, face, wav, LiveConfig(idle="still"))
    assert report.frames == len(rec.frames) > 0 and report.vad == "silero"
    assert report.rendered == 0 and report.idle == report.frames  # the engine never ran on noise
    still = rec.frames[0]
    assert all(np.array_equal(f, still) for f in rec.frames)
    marks = Landmarks(still)
    gaps = [mouth_gap(marks(f)) for f in rec.frames[::10]]
    assert max(gaps) - min(gaps) == 0.0
    # the control: the old level gate (-50 dBFS) lets the same noise drive the network
    report, _ = _run(engine, face, wav, LiveConfig(idle="still"), VadConfig(detector="level"))
    assert report.rendered >= 0.9 * report.frames


def test_speech_at_the_same_level_moves_the_mouth(engine, face, tmp_path) -> None:  # type: ignore[no-untyped-def]
    speech = _speech()
    report, rec = _run(engine, face, _wav(tmp_path / "speech.wav", speech), LiveConfig(idle="still"))
    assert report.speech_frames >= 0.8 * report.frames and report.rendered == report.speech_frames
    marks = Landmarks(rec.frames[0])
    gaps = np.array([mouth_gap(marks(f)) for f in rec.frames])
    assert gaps.max() - gaps.min() >= MIN_SPEECH_MOUTH_RANGE_PX, (gaps.min(), gaps.max())


def test_noise_between_words_reaches_the_network_as_silence(engine, face, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Pink noise, speech, pink noise: the frames far from the speech are the still face; the speech frames
    are the engine's, and the loop's gating equals the offline gating of the same signal."""
    from speech2vid.features.vad import gate_signal_windows
    from speech2vid.features.windows import speech_windows

    pad = at_level(coloured_noise(2 * SAMPLE_RATE, 1.0, 13), LEVEL_DBFS)
    x = np.concatenate([pad, _speech(), pad]).astype(np.float32)
    report, rec = _run(engine, face, _wav(tmp_path / "mix.wav", x), LiveConfig(idle="still"))
    la = engine.lookahead_columns  # the model's look-ahead decides which samples a frame's window ends at
    gated, speaking = gate_signal_windows(speech_windows(x, lookahead_columns=la), x, lookahead_columns=la)
    assert report.speech_frames == int(speaking.sum())
    expected = engine.render(gated[speaking])
    got = np.stack([f for f, s in zip(rec.frames, speaking) if s])
    assert np.abs(got - expected).max() < 1e-5  # batch 1 vs batch N kernels differ slightly
    quiet = [f for f, s in zip(rec.frames, speaking) if not s]
    assert len(quiet) >= 60 and all(np.array_equal(f, quiet[0]) for f in quiet)


def test_alive_in_silence_blinks_and_sways_never_in_speech(engine, face, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Speech, 9 s of quiet pink noise, speech. Against the same run with ``idle: still``: speech frames are
    identical (no motion in speech), silent frames differ (sway); dlib's eye aspect ratio dips at the
    animator's blinks, all in the silence; the mouth's opening in silence stays the still face's."""
    from speech2vid.frames.idle import RAMP_FRAMES, IdleAnimator, animate

    speech = _speech()[: 2 * SAMPLE_RATE]
    quiet = at_level(coloured_noise(9 * SAMPLE_RATE, 1.0, 14), LEVEL_DBFS - 10)
    wav = _wav(tmp_path / "alive.wav", np.concatenate([speech, quiet, speech]).astype(np.float32))
    report, rec = _run(engine, face, wav, LiveConfig(idle="alive"))
    _, still = _run(engine, face, wav, LiveConfig(idle="still"))
    idle = np.array([i.idle for i in rec.infos])
    assert idle.sum() > 8 * 25 and (~idle).sum() > 2 * 25
    near_idle = np.convolve(idle, np.ones(2 * RAMP_FRAMES + 1), mode="same") > 0  # the fade in and out
    for k in np.flatnonzero(~near_idle):
        np.testing.assert_array_equal(rec.frames[k], still.frames[k])
    moved = [np.abs(rec.frames[k] - still.frames[k]).max() for k in np.flatnonzero(idle)[2 * RAMP_FRAMES :]]
    assert np.mean(np.array(moved) > 1 / 255) > 0.9  # silence: the face sways
    # blinks, measured back on the frames
    assert report.blinks >= 1 and report.blink_frames
    marks = Landmarks(still.frames[0])
    points = [marks(f) for f in rec.frames]
    ears = np.array([ear(p) for p in points])
    dips = set(np.flatnonzero(ears < 0.75 * float(np.median(ears[idle]))).tolist())
    shut = {b + i for b in report.blink_frames for i, c in enumerate(BLINK_PROFILE) if c >= 0.8}
    blinking = {b + i for b in report.blink_frames for i in range(len(BLINK_PROFILE))}
    assert shut <= dips <= blinking, (sorted(shut), sorted(dips))
    assert all(idle[k] for k in blinking)
    # the loop applies exactly the pure idle functions (tests/test_idle.py: eyelids leave the mouth's pixels
    # alone, the sway is rigid) to the engine's still face, with the animator's poses
    animator, eyes = IdleAnimator(), photo_eyes(face)
    for k, (frame, info) in enumerate(zip(still.frames, rec.infos)):
        np.testing.assert_array_equal(rec.frames[k], animate(frame, animator.step(info.idle), eyes))
    # and the mouth does not move: in silence, once the sway is undone (a rigid fit of the whole frame), the
    # mouth region is the still face's up to interpolation; speech changes it several times more
    p = marks(still.frames[0]) * OUTPUT_SIZE / SHOWN
    (x0, y0), (x1, y1) = np.floor(p[48:68].min(0)).astype(int) - 2, np.ceil(p[48:68].max(0)).astype(int) + 3
    mouth = (slice(y0, y1), slice(x0, x1))
    residual = [_unswayed(rec.frames[k], still.frames[k])[mouth] for k in np.flatnonzero(idle)]
    rest = still.frames[int(np.argmax(idle))]
    talking = [np.abs(still.frames[k] - rest)[mouth].mean() for k in np.flatnonzero(~idle)]
    worst = max(float(np.abs(r).mean()) for r in residual)
    assert worst <= MOUTH_RESIDUAL_MAX, f"mouth moved in silence: {worst * 255:.2f}/255"
    assert np.median(talking) >= 2 * worst, (np.median(talking) * 255, worst * 255)


def _unswayed(frame: np.ndarray, still: np.ndarray) -> np.ndarray:
    """``frame`` moved back onto ``still`` by the Euclidean transform that best aligns them (OpenCV's ECC),
    minus ``still``: float (109, 109, 3)."""

    def grey(f: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(f.astype(np.float32), cv2.COLOR_RGB2GRAY)

    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    _, warp = cv2.findTransformECC(grey(still), grey(frame), warp, cv2.MOTION_EUCLIDEAN, criteria, None, 1)
    h, w = still.shape[:2]
    back = cv2.warpAffine(
        frame.astype(np.float32),
        warp,
        (w, h),
        flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return back - still


def test_generate_keeps_the_mouth_still_on_noise_too(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``generate`` (offline, streamed): pink noise, speech, pink noise -> the noise frames of the MP4 are one
    still face, the speech frames move; with ``idle: off`` the noise frames move as well (the control)."""
    import av

    from speech2vid.config import EncodeConfig, GenerateConfig
    from speech2vid.runtime.offline import prepare_inputs, render_video

    pad = at_level(coloured_noise(2 * SAMPLE_RATE, 1.0, 15), LEVEL_DBFS)
    wav = _wav(tmp_path / "noisy.wav", np.concatenate([pad, _speech()[: 2 * SAMPLE_RATE], pad]).astype(np.float32))

    def frames(idle: str) -> np.ndarray:
        out = tmp_path / f"{idle}.mp4"
        inputs = prepare_inputs([str(sample_face())], wav, out)
        render_video(engine, inputs, GenerateConfig(idle=idle), EncodeConfig(crf=0, preset="ultrafast"), progress=False)  # type: ignore[arg-type]
        with av.open(str(out)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.int16)

    still, plain = frames("still"), frames("off")
    assert len(still) == len(plain) == 150
    noise = np.r_[5:40, 115:145]  # frames whose windows hold only noise (0.35 s windows, 2 s of noise each side)
    change = lambda v: np.abs(np.diff(v, axis=0)).max(axis=(1, 2, 3))  # noqa: E731
    assert change(still[noise[:35]]).max() <= 1 and change(still[noise[35:]]).max() <= 1  # lossless H.264: one image
    assert change(still[55:95]).max() > 8  # speech moves the face
    assert change(plain[noise[:35]]).max() > 1  # without the VAD the noise moves it too
