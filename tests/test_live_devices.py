"""`speech2vid live` end to end on real virtual devices: a PulseAudio null sink as the microphone, Xvfb as the screen.

The capture path is the one a user's microphone takes (PortAudio -> ALSA's pulse plugin -> PulseAudio);
the WAV is played into the null sink with paplay and its monitor is the default source
(../shared/VIRTUAL_MIC.md). Every wait is on a condition (a line of output, a process exit, a pixel
on the screen), with a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from speech2vid.assets import sample_speech
from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.features.windows import SAMPLES_PER_FRAME, n_frames_for
from speech2vid.runtime.stats import frame_level_dbfs
from speech2vid.sinks.live import METER_DB, METER_PX

START_TIMEOUT = 240  # s: engine export and open on a busy 2-core machine
FRAME = SAMPLES_PER_FRAME


class LiveProcess:
    """`speech2vid live ...` in a subprocess; its output lines are collected by a thread."""

    def __init__(self, config: str, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._new = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "speech2vid", "--config", config, "live", "--weights", "random", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        """Until a line contains ``text``; fails if the process ends first or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._new:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._new.wait(0.5)):
                    raise AssertionError(f"no line with {text!r} from speech2vid live; output:\n{self.output}")
                self._new.wait(min(left, 1.0))

    def finish(self, sig: int | None = None, timeout: float = 120) -> int:
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"speech2vid live did not end; output:\n{self.output}") from None


def _until(check: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``check`` until it returns something truthy (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _config(tmp: Path, engine_cache: Path, extra: str = "") -> str:
    path = tmp / "live-test.yaml"
    path.write_text(f"engine:\n  cache_dir: {engine_cache}\n{extra}")
    return str(path)


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(video frames (n, H, W, 3) uint8, mono audio float32 at 16 kHz placed by its timestamps) of an MP4."""
    import av

    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        chunks = list(c.decode(audio=0))
    assert chunks and chunks[0].sample_rate == SAMPLE_RATE and chunks[0].pts == 0  # audio starts with the video
    return frames, np.concatenate([f.to_ndarray()[0] for f in chunks]).astype(np.float32)


def _write_wav(path: Path, x: np.ndarray) -> Path:
    sf.write(path, np.clip(x, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    return path


# ----------------------------------------------------------------------------- the virtual microphone


def _start_pulse(home: Path) -> dict[str, str]:
    """A private PulseAudio daemon (its own HOME and runtime folder: no other daemon is touched) with a null
    sink 'vmic' whose monitor is the default source; returns the environment that reaches it."""
    missing = [b for b in ("pulseaudio", "pactl", "paplay") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"PulseAudio binaries missing ({', '.join(missing)}): apt-get install pulseaudio pulseaudio-utils")
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"PortAudio missing ({exc}): apt-get install libportaudio2")
    run = home / "run"
    run.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(run)}
    env.pop("PULSE_SERVER", None)
    subprocess.run(
        [
            "pulseaudio",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "-n",
            "--load=module-native-protocol-unix",
            "--load=module-always-sink",
        ],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    _until(lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0, 30, "PulseAudio")
    for args in (["load-module", "module-null-sink", "sink_name=vmic"], ["set-default-source", "vmic.monitor"]):
        subprocess.run(["pactl", *args], env=env, check=True, capture_output=True, timeout=30)
    return env


def _stop_pulse(env: dict[str, str]) -> None:
    subprocess.run(["pulseaudio", "--kill"], env=env, timeout=30)


@pytest.fixture(scope="module")
def pulse(tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = _start_pulse(tmp_path_factory.mktemp("pulse"))
    yield env
    _stop_pulse(env)


@pytest.fixture(scope="module")
def test_wav(tmp_path_factory) -> tuple[Path, int]:  # type: ignore[no-untyped-def]
    """0.6 s of digital silence, 2.4 s of the sample speech, 0.6 s of silence; and where the speech starts."""
    speech = to_model_rate(read_audio(sample_speech())).astype(np.float32)[: round(2.4 * SAMPLE_RATE)]
    lead = round(0.6 * SAMPLE_RATE)
    x = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(lead, np.float32)])
    return _write_wav(tmp_path_factory.mktemp("wav") / "played.wav", x), lead


def _lag(x: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    """Sample offset of ``ref`` inside ``x`` by cross-correlation, and the normalised peak."""
    n = 1 << int(np.ceil(np.log2(x.size + ref.size)))
    cc = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(cc))
    lag = lag if lag < n // 2 else lag - n
    seg = x[max(lag, 0) : max(lag, 0) + ref.size]
    peak = float(cc[lag % n] / (np.linalg.norm(ref) * np.linalg.norm(seg) + 1e-12))
    return lag, peak


def _meter_dbfs(frames: np.ndarray) -> np.ndarray:
    """Per video frame, the level the file sink's meter bar shows (its lit length on -60..0 dBFS)."""
    row = frames[:, -METER_PX // 2, :, :].mean(axis=2)  # the bar's middle row, grey
    return (row > 127).sum(axis=1) / frames.shape[2] * METER_DB - METER_DB


def test_microphone_to_file_and_null_in_sync(pulse, test_wav, lite_onnx, engine_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wav, lead = test_wav
    out, stats = tmp_path / "live.mp4", tmp_path / "stats.json"
    live = LiveProcess(
        _config(tmp_path, engine_cache),
        [
            "--source",
            "mic://default",
            "--sink",
            f"file://{out}?meter=1",
            "--sink",
            "null://",
            "--stats",
            str(stats),
            "--duration",
            "120",
        ],
        pulse,
    )
    live.wait_for("capturing: first audio")  # the capture callback delivers: play now
    subprocess.run(["paplay", "--device=vmic", str(wav)], env=pulse, check=True, timeout=60)  # returns once played
    rc = live.finish(signal.SIGINT)  # Ctrl-C: flush and close the file
    assert rc == 130, live.output
    assert "Traceback" not in live.output

    # statistics written, consistent with what was captured
    s = json.loads(stats.read_text())
    assert s["ended"] == "stopped" and s["error"] is None
    assert s["audio_seconds"] >= 3.0  # the WAV lasts 3.6 s; that its speech is all there is checked below
    assert s["frames"] == n_frames_for(s["audio_samples"])
    lat = s["latency_ms"]
    assert lat["count"] > 0 and lat["median"] is not None and lat["p99"] >= lat["median"] >= s["lookahead_ms"]
    assert s["max_in_flight"] <= 2
    # which engine ran, the voice activity and the per-stage breakdown of the rendered frames
    assert s["backend"] == "onnxruntime" and s["precision"] in ("fp32", "int8") and s["vad"] == "silero"
    stages = s["stages_ms"]
    assert (
        stages["total"]["count"] == len(s["frame_stamps"]["frames"]) > 0 and stages["total"]["count"] <= s["rendered"]
    )
    assert sum(stages[k]["mean"] for k in stages if k != "total") == pytest.approx(stages["total"]["mean"], abs=0.01)

    # the file: complete, one frame per 40 ms of captured audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live-test.yaml", "live.mp4", "stats.json"]
    frames, audio = _decode(out)
    assert frames.shape[0] == s["frames"]
    assert abs(audio.size - s["audio_samples"]) < 1024  # AAC codes whole 1024-sample frames

    # the played speech is in the muxed audio: where it begins
    played = to_model_rate(read_audio(wav)).astype(np.float32)
    lag, peak = _lag(audio, played)
    assert peak > 0.8, f"the played WAV is not in the recording (normalised correlation {peak:.2f})"
    assert lag + lead > 0  # the capture was running before the speech began

    # A/V offset: the level each frame shows (its meter) against the level of the muxed audio around each frame time
    shown = _meter_dbfs(frames)
    heard = np.array(
        [frame_level_dbfs(audio[max(0, k * FRAME - FRAME // 2) : k * FRAME + FRAME // 2]) for k in range(len(frames))]
    )
    heard = np.clip(heard, -METER_DB, 0)
    err = {
        d: float(
            np.mean(np.abs(shown[max(d, 0) : len(shown) + min(d, 0)] - heard[max(-d, 0) : len(heard) - max(d, 0)]))
        )
        for d in range(-5, 6)
    }
    offset = min(err, key=err.get)  # type: ignore[arg-type]
    print(
        f"latency median {lat['median']} ms, p99 {lat['p99']} ms; meter error by offset (dB): "
        + ", ".join(f"{d:+d}: {e:.2f}" for d, e in err.items())
    )
    assert offset == 0, f"video vs muxed audio offset {offset} frames (mean meter error by offset: {err})"
    assert err[0] < 3.0  # dB: the meter is the muxed audio's level (AAC changes it a little)

    # and where the speech begins: the first frame whose 40 ms of the played WAV (placed by the correlation) is
    # louder than -40 dBFS, against the first frame whose meter says so
    def played_level(k: int) -> float:
        centre = k * FRAME - lag
        return frame_level_dbfs(played[max(0, centre - FRAME // 2) : max(0, centre + FRAME // 2)])

    expected_onset = next(k for k in range(len(frames)) if played_level(k) > -40)
    shown_onset = int(np.argmax(shown > -40))
    assert abs(shown_onset - expected_onset) <= 1, (shown_onset, expected_onset)


def test_microphone_lost_mid_stream(lite_onnx, engine_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The sound server dies mid-run (every capture device gone): reopening fails, the run ends with one line
    and a valid file. (Unloading just the sink is not a reliable test: PulseAudio often moves the stream.)"""
    env = _start_pulse(tmp_path / "pulse")
    out, stats = tmp_path / "lost.mp4", tmp_path / "stats.json"
    try:
        # A short reopen window: the server stays dead (tests/test_mic_reopen.py has it come back).
        live = LiveProcess(
            _config(tmp_path, engine_cache, "live:\n  reopen_seconds: 2\n"),
            ["--source", "mic://default", "--sink", f"file://{out}", "--stats", str(stats)],
            env,
        )
        live.wait_for("capturing: first audio")
    finally:
        _stop_pulse(env)
    rc = live.finish()
    assert rc == 2, live.output
    assert "reopening" in live.output and "Traceback" not in live.output
    last = live.lines[-1]
    assert last.startswith("speech2vid: error: microphone default") and "could not be reopened" in last
    assert "outputs were finalised" in last
    s = json.loads(stats.read_text())
    assert s["ended"] == "source failed" and s["reopens"] >= 1
    frames, audio = _decode(out)
    assert frames.shape[0] == s["frames"] == n_frames_for(s["audio_samples"]) > 0
    assert abs(audio.size - s["audio_samples"]) < 1024


def test_devices_lists_the_virtual_microphone(pulse) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "speech2vid", "devices"], env=pulse, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "mic://" in proc.stdout and " pulse " in proc.stdout.replace("  ", " ")


# ----------------------------------------------------------------------------- the window


@pytest.fixture(scope="module")
def xdisplay() -> str:
    """A private Xvfb screen; its DISPLAY name."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb missing: apt-get install xvfb")
    try:
        import tkinter  # noqa: F401  (display:// draws with Tk where OpenCV is the headless build)
    except ImportError:
        pytest.skip("this Python has no tkinter (and opencv-python-headless no GUI): install python3-tk")
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()  # Xvfb writes its display number once it accepts clients
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(30)


def test_display_window_shows_the_avatar(xdisplay, lite_loaded, lite_onnx, engine_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import ImageGrab

    from speech2vid.assets import sample_face
    from speech2vid.cli.options import RANDOM_LABEL
    from speech2vid.config import EngineConfig, LiveConfig
    from speech2vid.engine.factory import make_engine
    from speech2vid.frames.compose import avatar_side, background, compose
    from speech2vid.frames.render import watermark
    from speech2vid.runtime.avatar import live_avatar
    from speech2vid.runtime.idle_face import silence_window
    from speech2vid.sinks.live import display_avatar

    colour = (10, 200, 30)
    size = (400, 300)
    cfg = _config(
        tmp_path,
        engine_cache,
        f"live:\n  idle: still\n  window_size: [{size[0]}, {size[1]}]\n  avatar_scale: 0.5\n"
        f"  background_colour: [{colour[0]}, {colour[1]}, {colour[2]}]\n",
    )
    stats = tmp_path / "stats.json"
    env = {**os.environ, "DISPLAY": xdisplay}
    live = LiveProcess(
        cfg,
        [
            "--source",
            "silence://",
            "--sink",
            "display://",
            "--sink",
            "null://",
            "--no-overlay",
            "--stats",
            str(stats),
            "--duration",
            "120",
        ],
        env,
    )
    try:
        live.wait_for("capturing: first audio")

        def window() -> tuple[np.ndarray, int, int] | None:
            shot = np.asarray(ImageGrab.grab(xdisplay=xdisplay))
            ys, xs = np.nonzero(np.all(shot == colour, axis=2))
            if ys.size == 0:
                return None
            box = shot[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            if box.shape[:2] != (size[1], size[0]) or np.all(box == colour):  # not drawn yet, or no avatar yet
                return None
            return box, int(xs.min()), int(ys.min())

        found = _until(window, 120, "the speech2vid window on the screen")
        assert isinstance(found, tuple)
        shown, left, top = found
        # what the window must show: the still face (silence) of the same engine on the photo around the face
        # (live.compose: photo, the default), composed on the background
        live_cfg = LiveConfig(window_size=size, avatar_scale=0.5, background_colour=colour)
        avatar = live_avatar(
            [sample_face()], aligned=False, compose=live_cfg.compose, photo_side=live_cfg.photo_side, rest_mouth=True
        )
        assert avatar.present is not None
        engine = make_engine(lite_loaded, EngineConfig(), cache_dir=engine_cache)
        with engine:
            engine.set_identity(avatar.faces)
            still = avatar.present(engine.render(silence_window()[None])[0])
        side = avatar_side(size, live_cfg.avatar_scale)
        expected = compose(background(size, colour), watermark(display_avatar(still, side), RANDOM_LABEL))
        y, x = (size[1] - side) // 2, (size[0] - side) // 2
        avatar = shown[y : y + side, x : x + side].astype(np.float64)
        assert avatar.std() > 5.0  # not a blank frame
        assert np.abs(avatar - expected[y : y + side, x : x + side]).mean() < 2.0  # the avatar, as rendered

        # q in the window ends the run cleanly (keyboard through the X server, as a user presses it)
        if shutil.which("xdotool"):
            cx, cy = left + size[0] // 2, top + size[1] // 2
            subprocess.run(["xdotool", "mousemove", str(cx), str(cy), "key", "q"], env=env, check=True, timeout=30)
            assert live.finish() == 0, live.output
            assert json.loads(stats.read_text())["ended"] == "window closed"
        else:
            assert live.finish(signal.SIGTERM) == 143, live.output  # as every command a SIGTERM stops (issue 23)
    finally:
        if live.proc.poll() is None:
            live.proc.kill()
