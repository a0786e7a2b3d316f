"""A real browser watching the ``webrtc://`` page: Debian's Chromium, headless, driven by Selenium through its
own chromedriver (no browser download), with its fake microphone playing a recording.

In the page it records what arrives: each displayed frame (``requestVideoFrameCallback``: its display time,
and with ``pictures`` the picture as a JPEG data URL), the inbound audio's and video's estimated playout
times every 250 ms (their difference is the A/V offset as received), and its own microphone's envelope
every 2 ms. Used by tests/test_webrtc.py and docs/webrtc_soak.py; needs the test extra (selenium).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

RECORDER_JS = """
const [pictures, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  while (!window.pc || (window.location.search.includes("mic=1") && !window.micStream)) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const rec = { frames: [], shown: 0, stats: [], mic: [] };
  window.__rec = rec;
  const video = document.getElementById("avatar");
  const canvas = document.createElement("canvas");
  const g = canvas.getContext("2d");
  const onFrame = (now, meta) => {
    rec.shown += 1;
    if (pictures && video.videoWidth) {
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      g.drawImage(video, 0, 0);
      rec.frames.push({ shown: meta.expectedDisplayTime, jpeg: canvas.toDataURL("image/jpeg", 0.92) });
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  if (window.micStream && pictures) {
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 128;
    ctx.createMediaStreamSource(window.micStream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let s = 0; for (const x of buf) s += x * x;
      rec.mic.push([performance.now(), Math.sqrt(s / buf.length)]);
    }, 2);
  }
  setInterval(async () => {
    const report = await window.pc.getStats();
    const row = [performance.now(), null, null, rec.shown];
    report.forEach((s) => {
      if (s.type === "inbound-rtp") row[s.kind === "audio" ? 1 : 2] = s.estimatedPlayoutTimestamp ?? null;
    });
    rec.stats.push(row);
  }, 250);
  done(true);
})();
"""


def chromium_available() -> bool:
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


def open_chromium(microphone: Path | None) -> Any:
    """A headless Chromium whose microphone plays ``microphone`` (a WAV, looped) and that may play sound."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers give /dev/shm a few MB
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ]
    if microphone is not None:
        flags.append(f"--use-file-for-fake-audio-capture={microphone}")
    for flag in flags:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(shutil.which("chromedriver"))), options=options)
    browser.set_script_timeout(60)
    return browser


def watch(browser: Any, url: str, *, pictures: bool) -> None:
    """Open the page at ``url`` and start recording (pictures of every frame: memory grows with time)."""
    browser.get(url)
    assert browser.execute_async_script(RECORDER_JS, pictures) is True


def recorded(browser: Any) -> dict[str, Any]:
    """What the page has recorded so far: ``frames``, ``shown``, ``stats`` rows (t, audio, video, shown), ``mic``."""
    out: dict[str, Any] = browser.execute_script("return window.__rec;")
    return out


def av_offsets(stats: list[list[float | None]], per: int = 4) -> list[float]:
    """Audio minus video playout time (ms), the median of each run of ``per`` samples (one second at 250 ms):
    a single sample can be up to a frame stale (video's playout time is its last frame's)."""
    rows = np.array([(r[1] - r[2]) for r in stats if r[1] is not None and r[2] is not None], dtype=np.float64)
    return [float(np.median(w)) for w in np.array_split(rows, max(1, rows.size // per))] if rows.size else []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a page served by a ``live`` started next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_page(url: str, server: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Return once ``url`` answers; RuntimeError (with the server's stderr) if ``server`` exits first or
    ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"the server ended before {url} answered: {server.communicate()[1][-3000:]}")
            time.sleep(0.1)  # polling a port that is not open yet: nothing to wait on
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")
