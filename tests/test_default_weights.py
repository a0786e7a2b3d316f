"""The bundled default weights make a face talk: its mouth follows the speech, the rest of it stays put.

The held-out synthetic face (an identity the weights never saw) speaks the bundled sample speech
through the ONNX Runtime engine, as `speech2vid demo` runs it. Mouth motion is measured on the pixels,
independently of the model: the mean absolute difference between each frame's mouth band and the
same face rendered with the audio zeroed (a closed, silent mouth), compared with the speech's loudness.
"""

from __future__ import annotations

import numpy as np
import pytest

from speech2vid.assets import sample_face, sample_speech, sample_synth_face
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.config import EngineConfig, load_model_config
from speech2vid.engine.factory import make_engine
from speech2vid.faces import align_photo
from speech2vid.features.windows import n_frames_for, speech_windows
from speech2vid.model.ref import model_ref
from speech2vid.training.loss import mouth_band_top

FPS, RATE = 25, 16000


def loudness_dbfs(signal: np.ndarray, n: int) -> np.ndarray:
    """RMS of the 0.35 s each frame's MFCC window covers, in dBFS."""
    half = int(0.175 * RATE)
    centres = (np.arange(n) * RATE / FPS).astype(int)
    return np.array([20 * np.log10(np.sqrt(np.mean(signal[max(0, c - half):c + half] ** 2)) + 1e-9) for c in centres])


@pytest.fixture(scope="module")
def spoken(engine_cache) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    """Per face: frames (n, 109, 109, 3) on the speech, the silent frame, and the loudness per frame."""
    signal = to_model_rate(read_audio(sample_speech()))
    n = n_frames_for(len(signal))
    windows = speech_windows(signal, n)
    loud = loudness_dbfs(signal, n)
    out = {}
    with make_engine(model_ref(load_model_config("lite"), None), EngineConfig(cache_dir=str(engine_cache))) as engine:
        for name, photo in (("synthetic", sample_synth_face()), ("photo", sample_face())):
            engine.set_identity([align_photo(photo).image])
            out[name] = (engine.render(windows), engine.render(np.zeros_like(windows[:1]))[0], loud)
    return out


def mouth_motion(frames: np.ndarray, still: np.ndarray, top: int, bottom: int) -> np.ndarray:
    return 255 * np.abs(frames[:, top:bottom] - still[top:bottom]).mean(axis=(1, 2, 3))


def test_the_mouth_of_a_held_out_face_follows_the_speech(spoken) -> None:  # type: ignore[no-untyped-def]
    frames, still, loud = spoken["synthetic"]
    motion = mouth_motion(frames, still, mouth_band_top(), frames.shape[1])
    r = np.corrcoef(motion, loud)[0, 1]
    speaking = loud > loud.max() - 20
    assert r > 0.5, f"mouth motion vs loudness r = {r:.2f}"
    assert motion[speaking].mean() > 3 * motion[~speaking].mean(), (motion[speaking].mean(), motion[~speaking].mean())
    assert motion[speaking].mean() > 2.5  # grey levels (measured 3.9): visible, not a numerical tremor


def test_the_lower_face_moves_with_the_audio_more_than_the_eyes(spoken) -> None:  # type: ignore[no-untyped-def]
    for name, (frames, still, _) in spoken.items():
        top = mouth_band_top()
        lower = mouth_motion(frames, still, top, frames.shape[1]).mean()
        eyes = mouth_motion(frames, still, 25, 50).mean()  # the template's eye rows
        assert lower > 2 * eyes, (name, lower, eyes)  # measured 3.0x (synthetic), 4.2x (photo)


def test_the_demo_uses_the_bundled_weights_and_writes_the_whole_video(tmp_path, engine_cache) -> None:  # type: ignore[no-untyped-def]
    import av

    from speech2vid.cli import main

    cfg = tmp_path / "cache.yaml"
    cfg.write_text(f"engine: {{cache_dir: '{engine_cache}'}}\n")
    out = tmp_path / "demo.mp4"
    assert main(["-q", "--config", str(cfg), "demo", "-o", str(out)]) == 0
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 130  # 5.20 s of speech at 25 fps
    # No RANDOM WEIGHTS banner, and the face moves: frames differ where the mouth is.
    spread = np.std(np.stack(frames).astype(np.float32), axis=0)
    h = frames[0].shape[0]
    assert spread[int(0.6 * h):int(0.9 * h)].mean() > 2 * spread[int(0.1 * h):int(0.35 * h)].mean()
