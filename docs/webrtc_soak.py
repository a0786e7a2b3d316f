"""An hour through the browser: ``live --source webrtc:// --sink webrtc://`` watched by headless Chromium.

Chromium's fake microphone loops a recording (5 s of silence, then the sample speech, again and again) into
the page, the page sends it to the avatar and plays the avatar back. At the end it prints, as JSON: the
loop's slots (rendered, idle, repeated, dropped), the frames the browser displayed, the A/V offset as
received (audio minus video estimated playout time) per minute (the median of its per-second medians, and
the worst second), and the loop's RSS at the start and the end of the soak (``live --soak``).

    python docs/webrtc_soak.py --seconds 3600 --json soak.json    # needs the test extra and chromium

Numbers in docs/live.md ("In a browser").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from speech2vid.assets import sample_speech
from speech2vid.audio.io import read_audio, to_model_rate
from speech2vid.bench.browser import av_offsets, free_port, open_chromium, recorded, wait_for_page, watch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3600.0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        speech = to_model_rate(read_audio(str(sample_speech()))).astype(np.float32)
        soundfile.write(str(wav), np.concatenate([np.zeros(5 * 16000, np.float32), speech]), 16000)
        port = free_port()
        stats = Path(tmp) / "stats.json"
        live = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "speech2vid",
                "-q",
                "live",
                "--source",
                "webrtc://",
                "--sink",
                f"webrtc://127.0.0.1:{port}",
                "--sink",
                "null://",
                "--duration",
                str(args.seconds),
                "--soak",
                "--stats",
                str(stats),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_page(f"http://127.0.0.1:{port}/", live)
        except RuntimeError as exc:
            sys.exit(str(exc))
        browser = open_chromium(wav)
        try:
            watch(browser, f"http://127.0.0.1:{port}/?mic=1", pictures=False)
            _, err = live.communicate(timeout=args.seconds + 600)
            rec = recorded(browser)
        finally:
            browser.quit()
        if live.returncode != 0:
            sys.exit(err[-3000:])
        report = json.loads(stats.read_text())
    seconds = av_offsets(rec["stats"])
    minutes = [seconds[i : i + 60] for i in range(0, len(seconds), 60)]
    soak = report.get("soak", [])
    out = {
        "audio_seconds": report["audio_seconds"],
        "slots": report["frames"],
        "rendered": report["rendered"],
        "idle": report["idle"],
        "repeated": report["repeated"],
        "dropped": report["dropped"],
        "late": report["late"],
        "browser_frames_shown": rec["shown"],
        "av_offset_ms_per_minute": [
            {"median": round(float(np.median(m)), 1), "worst_second": round(float(max(m, key=abs)), 1)} for m in minutes
        ],
        "rss_mb_start_end": [soak[0]["rss_mb"], soak[-1]["rss_mb"]] if soak else None,
        "soak_drift": report.get("soak_drift"),
        "latency_ms": report["latency_ms"],
    }
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
