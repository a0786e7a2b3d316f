"""A lost microphone that comes back: the sound server is killed and restarted under a running `live`.

Kiosks run unattended for days; a sound server restart or a re-plugged USB microphone must not end the
run. While the device is gone, silence stands in for it (the face idles, frames keep flowing, the MP4
keeps its audio in sync), reopening is retried with a growing delay for ``live.reopen_seconds``, and the
outage is counted in the stats. Uses the private PulseAudio daemon of tests/test_live_devices.py.
"""

from __future__ import annotations

import json
import signal
import subprocess

from test_live_devices import LiveProcess, _config, _decode, _start_pulse, _stop_pulse, _until

from speech2vid.features.windows import n_frames_for


def _restart_pulse(env: dict[str, str]) -> None:
    """The same daemon again, in the same runtime folder, with the same virtual microphone."""
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


def test_microphone_back_after_the_sound_server_restarts(lite_onnx, engine_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = _start_pulse(tmp_path / "pulse")
    out, stats = tmp_path / "back.mp4", tmp_path / "stats.json"
    try:
        live = LiveProcess(
            _config(tmp_path, engine_cache, "live:\n  reopen_seconds: 120\n"),
            ["--source", "mic://default", "--sink", f"file://{out}", "--stats", str(stats)],
            env,
        )
        live.wait_for("capturing: first audio")
        _stop_pulse(env)
        live.wait_for("reopening it for up to")  # the loss is noticed: silence flows, reopens begin
        _restart_pulse(env)
        live.wait_for("reopened after")
        rc = live.finish(signal.SIGTERM)
    finally:
        _stop_pulse(env)
    assert rc == 143, live.output  # SIGTERM's status, as in every command (issue 23); the files are finalised
    assert "Traceback" not in live.output and "could not be reopened" not in live.output
    s = json.loads(stats.read_text())
    assert s["ended"] == "stopped" and s["error"] is None
    assert s["reopens"] >= 1 and s["mic_lost_seconds"] > 0  # the outage, filled with silence, is counted
    # Frames kept flowing through the outage: one per 40 ms of audio, silence included, and all in the file.
    assert s["audio_seconds"] > s["mic_lost_seconds"]
    frames, audio = _decode(out)
    assert frames.shape[0] == s["frames"] == n_frames_for(s["audio_samples"])
    assert abs(audio.size - s["audio_samples"]) < 1024


def test_microphone_that_stays_away_ends_the_run_after_the_window(lite_onnx, engine_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = _start_pulse(tmp_path / "pulse")
    out, stats = tmp_path / "gone.mp4", tmp_path / "stats.json"
    try:
        live = LiveProcess(
            _config(tmp_path, engine_cache, "live:\n  reopen_seconds: 3\n"),
            ["--source", "mic://default", "--sink", f"file://{out}", "--stats", str(stats)],
            env,
        )
        live.wait_for("capturing: first audio")
    finally:
        _stop_pulse(env)
    rc = live.finish()
    assert rc == 2, live.output
    last = live.lines[-1]
    assert last.startswith("speech2vid: error: microphone default") and "could not be reopened within 3 s" in last
    s = json.loads(stats.read_text())
    assert s["ended"] == "source failed" and s["reopens"] >= 2 and s["mic_lost_seconds"] >= 3
    frames, _ = _decode(out)
    assert frames.shape[0] == s["frames"] == n_frames_for(s["audio_samples"]) > 0
