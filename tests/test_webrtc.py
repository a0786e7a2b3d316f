"""WebRTC (issue 22): ``live --source webrtc:// --sink webrtc://`` in a real headless Chromium, and the server's
answers to bad peers.

The browser test plays a real recording as Chromium's microphone (its fake capture device), lets the page
send it to the avatar, and records in the page what arrives (:mod:`speech2vid.bench.browser`): every
displayed frame (its display time and picture), the inbound streams' estimated playout times (the A/V
offset as received), and its own microphone's envelope. Which slot a received frame is, is read from the
stamp the sink draws with ``?stamp=1``. The server's side of the same audio is the run's ``file://``
recording (the samples the loop got, sample 0 first). From these:

* the mouth: dlib's lip gap on the received frames (eval's instrument) against the loudness of each slot's
  audio, as ``eval --photos`` scores it;
* latency, microphone to displayed frame: the speech onset is found in the page's microphone and in the
  server's recording; it ties the two clocks, and slot ``k`` (sample ``640 k``) was captured
  ``(640 k - onset) / 16 kHz`` after the page heard the onset;
* the A/V offset: audio minus video estimated playout time of the inbound streams.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from speech2vid.bench.browser import chromium_available, free_port
from speech2vid.errors import OutputError
from speech2vid.sinks.webrtc import STAMP_BITS, WebRTCOptions, WebRTCServer, parse_webrtc, read_stamp, stamp_slot

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- URIs and the stamp


def test_webrtc_uris_parse_and_bad_ones_say_what_is_wrong() -> None:
    assert parse_webrtc("webrtc://") == WebRTCOptions()
    o = parse_webrtc("webrtc://0.0.0.0:9000?viewers=2&size=256&stamp=1")
    assert (o.host, o.port, o.viewers, o.size, o.stamp, o.url) == (
        "0.0.0.0",
        9000,
        2,
        256,
        True,
        "http://0.0.0.0:9000/",
    )
    for bad, says in [
        ("webrtc://127.0.0.1:99999", "port"),
        ("webrtc://127.0.0.1:0", "port"),
        ("webrtc://:8080?viewers=0", "viewers"),
        ("webrtc://:8080?size=big", "size"),
        ("webrtc://:8080?colour=1", "unknown option"),
        ("webrtc://host:8080/path", "host and port only"),
    ]:
        with pytest.raises(OutputError, match=says):
            parse_webrtc(bad)


def test_the_slot_stamp_survives_a_lossy_round_trip() -> None:
    import cv2

    rng = np.random.default_rng(0)
    for k in (0, 1, 1234, 2**STAMP_BITS - 1):
        image = stamp_slot(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), k)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 60])
        assert ok and read_stamp(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)) == k


# ----------------------------------------------------------------------------- bad peers (no browser needed)


def post(url: str, body: bytes) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def _client_offer() -> tuple[object, dict[str, str]]:
    """A real peer (aiortc) that wants video and audio: its offer."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, {"sdp": pc.localDescription.sdp, "type": "offer"}


def test_bad_offers_too_many_viewers_a_silent_peer_and_a_taken_port(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    pytest.importorskip("aiortc")
    caplog.set_level(logging.INFO, logger="speech2vid.sinks.webrtc")
    port = free_port()
    server = WebRTCServer(WebRTCOptions(port=port, viewers=1), connect_seconds=1.0)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}/offer"
        status, body = post(url, b"{not json")
        assert status == 400 and "malformed offer" in body["error"]
        status, body = post(url, json.dumps({"sdp": "v=0 nonsense", "type": "offer"}).encode())
        assert status == 400 and "malformed offer" in body["error"]
        status, body = post(url, json.dumps({"sdp": "x", "type": "answer"}).encode())
        assert status == 400
        # the page is still served after the bad offers
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert b"RTCPeerConnection" in page.read()

        loop = asyncio.new_event_loop()
        pc, offer = loop.run_until_complete(_client_offer())
        status, answer = post(url, json.dumps(offer).encode())  # answered, then never connects
        assert status == 200 and answer["type"] == "answer" and "m=video" in answer["sdp"]
        assert server.viewers == 1
        status, body = post(url, json.dumps(offer).encode())
        assert status == 503 and "too many viewers" in body["error"]
        deadline = time.monotonic() + 30
        while server.viewers and time.monotonic() < deadline:  # the silent peer is dropped after connect_seconds
            time.sleep(0.05)
        assert server.viewers == 0
        assert any("never connected" in r.getMessage() for r in caplog.records)
        loop.run_until_complete(pc.close())  # type: ignore[attr-defined]
        loop.close()
        assert server.refused == 4

        with pytest.raises(OutputError, match="in use") as taken:
            WebRTCServer(WebRTCOptions(port=port)).start()
        assert "\n" not in str(taken.value)
    finally:
        server.stop()
    assert all(r.exc_info is None for r in caplog.records)  # one line each, no traceback


# ----------------------------------------------------------------------------- a real browser


def _speech_wav(path: Path) -> np.ndarray:
    """5 s of silence, the sample speech, 1 s of silence, 16 kHz mono: one clear onset for the clocks, heard
    after the page has connected (it takes about 3 s from page load here)."""
    import soundfile

    from speech2vid.assets import sample_speech
    from speech2vid.audio.io import read_audio, to_model_rate

    speech = to_model_rate(read_audio(str(sample_speech()))).astype(np.float32)
    signal = np.concatenate([np.zeros(5 * 16000, np.float32), speech, np.zeros(16000, np.float32)])
    soundfile.write(str(path), signal, 16000, subtype="PCM_16")
    return signal


def onset(times: np.ndarray, rms: np.ndarray, threshold: float) -> float:
    """The first time the envelope rises above ``threshold`` (after it was below it)."""
    below = np.flatnonzero(rms < threshold)
    first_quiet = below[0] if below.size else 0
    above = np.flatnonzero((rms >= threshold) & (np.arange(rms.size) > first_quiet))
    return float(times[above[0]])


@pytest.mark.slow
@pytest.mark.skipif(not chromium_available(), reason="Debian's chromium and chromium-driver are not installed")
def test_live_in_headless_chromium_mouth_latency_and_av_offset(tmp_path: Path) -> None:
    pytest.importorskip("aiortc")
    pytest.importorskip("selenium")
    from speech2vid.bench.browser import av_offsets, open_chromium, recorded, wait_for_page, watch
    from speech2vid.training.evaluation.visible import Instruments, frame_loudness, score

    wav = tmp_path / "speech.wav"
    sent = _speech_wav(wav)
    port = free_port()
    recording = tmp_path / "server.mp4"
    config = tmp_path / "small.yaml"
    config.write_text("live:\n  photo_side: 256\n")
    live = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "--config",
            str(config),
            "live",
            "--source",
            "webrtc://",
            "--sink",
            f"webrtc://127.0.0.1:{port}?stamp=1&size=256",
            "--sink",
            f"file://{recording}",
            "--duration",
            "14",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_page(f"http://127.0.0.1:{port}/", live)
    browser = open_chromium(wav)
    try:
        watch(browser, f"http://127.0.0.1:{port}/?mic=1", pictures=True)
        out, err = live.communicate(timeout=120)
        rec = recorded(browser)
    finally:
        browser.quit()
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, err[-3000:]

    import cv2

    frames = []
    for f in rec["frames"]:
        jpeg = base64.b64decode(f["jpeg"].split(",", 1)[1])
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        frames.append((read_stamp(rgb), float(f["shown"]), rgb))
    ks = np.array([k for k, _, _ in frames])
    assert len(frames) >= 100 and np.all(np.diff(ks) >= 0), ks  # shown in order

    # the server's audio: the recording's track is every sample the loop got, sample 0 first
    import av

    with av.open(str(recording)) as container:
        server_audio = np.concatenate([a.to_ndarray().mean(axis=0) for a in container.decode(audio=0)])
        rate = container.streams.audio[0].rate
    assert rate == 16000
    threshold = 0.02
    hop = 160
    env = np.sqrt(np.convolve(server_audio**2, np.ones(hop) / hop, mode="same"))
    s_on = onset(np.arange(env.size, dtype=np.float64), env, threshold)
    mic = np.array(rec["mic"], dtype=np.float64)
    t_on = onset(mic[:, 0], mic[:, 1], threshold)
    captured = t_on + (ks * 640 - s_on) / 16.0  # page ms at which slot k's centre sample was captured
    shown = np.array([s for _, s, _ in frames])
    heard = ks * 640 > s_on  # slots after the onset: the two clocks are tied there
    latency = (shown - captured)[heard]
    p50, p99 = float(np.percentile(latency, 50)), float(np.percentile(latency, 99))

    windows = av_offsets(rec["stats"])  # per second; the browser converges over its first seconds
    assert len(windows) >= 5, rec["stats"]
    settled = np.array(windows[len(windows) // 2 :])

    # the mouth: dlib on the frames received, against each slot's loudness in the server's audio
    loud = frame_loudness(server_audio, int(ks.max()) + 1)[ks]
    gaps, _ = Instruments().measure((rgb for _, _, rgb in frames), None)
    lips = score(gaps, loud, [])
    report = {
        "frames_received": len(frames),
        "slots": int(ks.max()) + 1,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "av_offset_ms_per_second": [round(float(w), 1) for w in windows],
        "lip_gap_std": lips.gap_std,
        "r_loudness": lips.r_loudness,
        "r_best": lips.r_best,
        "best_lag": lips.best_lag,
        "faces_found": lips.faces_found,
        "sent_seconds": sent.size / 16000,
    }
    print(json.dumps(report))
    assert lips.faces_found >= 0.9 * len(frames)
    assert lips.gap_std > 0.02 and lips.r_best > 0.3, report  # the mouth moves, with the speech
    assert 0 < p50 < 400 and p99 < 800, report
    # once the browser has converged: within one frame (40 ms) typically, within two in every second
    assert abs(float(np.median(settled))) <= 40 and np.all(np.abs(settled) <= 80), report


def test_the_command_says_in_one_line_what_is_wrong(tmp_path: Path) -> None:
    """A taken port and a browser microphone without a page: exit 2, one line, no traceback, nothing left."""
    pytest.importorskip("aiortc")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv, says in [
            (["--source", "silence://", "--sink", f"webrtc://127.0.0.1:{port}", "--duration", "1"], "in use"),
            (["--source", "webrtc://", "--sink", "null://", "--duration", "1"], "needs --sink webrtc://"),
            (["--source", "silence://", "--sink", "webrtc://:1?viewers=99", "--duration", "1"], "viewers"),
        ]:
            run = subprocess.run(
                [sys.executable, "-m", "speech2vid", "live", *argv],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=tmp_path,
            )
            errors = [line for line in run.stderr.splitlines() if line.startswith("speech2vid: error:")]
            assert run.returncode == 2 and len(errors) == 1 and says in errors[0], run.stderr
            assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_viewer_that_takes_nothing_holds_a_bounded_queue() -> None:
    """What is kept for a stalled viewer: at most the queue's length, the rest dropped and counted."""
    pytest.importorskip("aiortc")
    from speech2vid.sinks.webrtc import VIDEO_QUEUE, queued_track

    track = queued_track("video", VIDEO_QUEUE)
    for k in range(1000):
        track.put(k)
    assert len(track._items) == VIDEO_QUEUE and track.dropped == 1000 - VIDEO_QUEUE
    assert list(track._items) == [998, 999]  # the newest are what it will be sent


def test_viewers_joining_and_leaving_never_hold_up_the_avatar() -> None:
    """A real peer (aiortc) watches, receives frames, then goes away without a word (its transport closed):
    every write of the sink returns at once throughout, and the server forgets the viewer."""
    import asyncio
    import threading

    pytest.importorskip("aiortc")
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from speech2vid.sinks.live import FrameInfo
    from speech2vid.sinks.webrtc import WebRTCSink

    port = free_port()
    sink = WebRTCSink(WebRTCOptions(port=port))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    received: list[int] = []
    got_frames = threading.Event()

    async def join() -> RTCPeerConnection:
        pc, offer = await _client_offer()

        @pc.on("track")  # type: ignore[untyped-decorator]
        def on_track(track) -> None:  # type: ignore[no-untyped-def]
            async def take() -> None:
                while True:
                    await track.recv()
                    if track.kind == "video":
                        received.append(1)
                        if len(received) >= 10:
                            got_frames.set()

            asyncio.ensure_future(take())

        status, answer = await asyncio.get_running_loop().run_in_executor(
            None, post, f"http://127.0.0.1:{port}/offer", json.dumps(offer).encode()
        )
        assert status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(**answer))  # type: ignore[attr-defined]
        return pc  # type: ignore[return-value]

    pc = asyncio.run_coroutine_threadsafe(join(), loop).result(timeout=60)
    image = np.full((128, 128, 3), 128, np.uint8)
    waits = []
    try:
        k = 0
        deadline = time.monotonic() + 60
        while not got_frames.is_set() and time.monotonic() < deadline:  # a frame a slot, at the live pace
            sink.write_audio(np.zeros(640, np.float32))
            t = time.perf_counter()
            sink.write(image, FrameInfo(k, True, None, -90.0, 25.0, 0, False))
            waits.append(time.perf_counter() - t)
            k += 1
            time.sleep(0.04)
        assert got_frames.is_set(), f"the viewer received {len(received)} frames"
        # gone without a word: its transports stop, nothing is said to the server
        asyncio.run_coroutine_threadsafe(pc.close(), loop).result(timeout=30)  # type: ignore[attr-defined]
        for j in range(k, k + 100):
            sink.write_audio(np.zeros(640, np.float32))
            t = time.perf_counter()
            sink.write(image, FrameInfo(j, True, None, -90.0, 25.0, 0, False))
            waits.append(time.perf_counter() - t)
            time.sleep(0.01)
        deadline = time.monotonic() + 60
        while sink.server.viewers and time.monotonic() < deadline:  # the server notices the peer has gone
            time.sleep(0.05)
        left = sink.server.viewers
    finally:
        sink.close()
        loop.call_soon_threadsafe(loop.stop)
    assert max(waits) < 0.05, max(waits)  # the writes never waited on a viewer
    assert left == 0


def test_without_the_webrtc_extra_one_line_names_it(tmp_path: Path) -> None:
    """On the runtime install aiortc is absent (``sys.modules['aiortc'] = None`` makes it so here)."""
    code = (
        "import sys; sys.modules['aiortc'] = None\n"
        "from speech2vid.cli import main\n"
        "sys.exit(main(['-q', 'live', '--source', 'silence://', '--sink', 'webrtc://', '--duration', '1']))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == (
        "speech2vid: error: webrtc:// needs aiortc and aiohttp, which the runtime install leaves out: "
        "pip install 'speech2vid[webrtc]'"
    )
