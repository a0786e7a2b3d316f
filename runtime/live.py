"""The live loop: source -> streaming MFCC windows -> double-buffered engine -> sinks, at 25 fps.

Clock
    Frame ``k`` belongs to audio sample ``640 k``; it exists once :class:`StreamingWindows` has heard the
    look-ahead past it. Nothing waits on the wall clock: the loop runs as fast as audio arrives, so audio
    and video cannot drift apart, and a file sink gets exactly one frame per 640 samples it was given.

Double buffering
    :class:`InferenceWorker` runs the engine on one thread while the next frame's window waits in a
    single staging slot: at most two frames are in flight. A window that arrives while the slot is still
    full replaces it (the replaced frame is *skipped*): the backlog can never grow, and the engine always
    works on the newest audio. A skipped slot is filled by policy: ``repeat`` gives every sink the last
    image again, ``drop`` gives it only to sinks that need every slot (files). A frame shown later than
    ``lookahead + late_ms`` after its centre sample was captured is counted late.

Latency
    Per fresh frame: the monotonic time its image was written to every sink minus the capture time of
    sample ``640 k`` (the window's centre), from the source's stamps. It includes the look-ahead,
    capture blocking, feature extraction, inference and the sinks' own work. Frames completed by the
    end-of-stream flush (their right context padded with silence) are not measured.

Voice activity and idle
    With ``idle: still`` or ``alive`` and ``vad.detector: silero``, the audio goes through Silero VAD as it
    arrives (features/vad.py) and every window column that is not speech is replaced by the MFCC of
    silence before the engine sees it: noise never drives the mouth. A window without any speech column
    is the silence window, so its frame is the face rendered once from silence at start-up, shown
    without running the engine: a closed, still mouth and an idle CPU. ``alive`` adds blinks and a slow
    sway to the frames (frames/idle.py), fading out when speech comes. ``vad.detector: level`` is the
    older gate: ``idle_hold_frames`` frames quieter than ``idle_threshold_dbfs`` show the still face.

Stages
    Every fresh frame carries monotonic stamps (:class:`FrameStamps`): its last needed sample captured
    (the callback's clock), read from the ring, window complete (MFCC and VAD), staged for the engine,
    engine started, engine done, shown by every sink. The per-stage durations go into histograms
    (``stages_ms`` in the stats) and the last ``STAMP_HISTORY`` frames' stamps into ``frame_stamps``.

Threads
    The engine runs on one worker thread (``render``); PortAudio's callback thread only fills the ring;
    everything else (features, sinks, the window) runs on the calling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from speech2vid.audio.constants import SAMPLE_RATE
from speech2vid.config import LiveConfig, VadConfig
from speech2vid.engine.talking_face import TalkingFaceEngine
from speech2vid.errors import OutputError
from speech2vid.features.constants import HOP
from speech2vid.features.pauses import PauseDetector, PauseParams
from speech2vid.features.vad import (
    VAD_CHUNK,
    GateParams,
    SileroVAD,
    SpeechGate,
    column_samples,
    gate_windows,
)
from speech2vid.features.windows import (
    FPS,
    MAX_LOOKAHEAD_COLUMNS,
    SAMPLES_PER_FRAME,
    WINDOW_COLS,
    StreamingWindows,
    lookahead_seconds,
    n_frames_for,
)
from speech2vid.frames.idle import EyeBox, animate
from speech2vid.runtime.idle_face import idle_face, silence_window
from speech2vid.runtime.inference_worker import InferenceWorker
from speech2vid.runtime.live_report import FrameStamps, LiveReport
from speech2vid.runtime.priority import raise_priority
from speech2vid.runtime.stats import CaptureClock, LatencyHistogram, frame_level_dbfs, rss_mb
from speech2vid.sinks.live import FrameInfo, LiveSink
from speech2vid.sources.live import POLL_SECONDS, PacedSource, Source, SourceError

if TYPE_CHECKING:  # the live loop reads an avatar; making one (photos, face models) is the caller's
    from speech2vid.runtime.avatar import Avatar

log = logging.getLogger("speech2vid.runtime.live")

HISTORY_SAMPLES = 2 * SAMPLE_RATE  # recent audio kept for frame levels (a window spans 0.35 s)
WARMUP_RENDERS = 5  # engine calls timed at start-up for the expected latency
VAD_KEEP_CHUNKS = 64  # VAD decisions kept behind the newest window (2 s; a window reads 0.35 s)


class AudioHistory:
    """The most recent ``HISTORY_SAMPLES`` of 16 kHz audio, addressed by absolute sample index."""

    def __init__(self) -> None:
        self._buf = np.zeros(HISTORY_SAMPLES, dtype=np.float32)
        self.end = 0  # absolute index one past the newest sample

    def push(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        if n >= HISTORY_SAMPLES:
            self._buf[:] = samples[-HISTORY_SAMPLES:]
        else:
            self._buf[:-n] = self._buf[n:]
            self._buf[-n:] = samples
        self.end += n

    def span(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` clipped to what is held."""
        lo = max(start, self.end - HISTORY_SAMPLES, 0)
        hi = min(stop, self.end)
        if hi <= lo:
            return self._buf[:0]
        return self._buf[lo - self.end + HISTORY_SAMPLES : hi - self.end + HISTORY_SAMPLES]


def run_live(
    engine: TalkingFaceEngine,
    avatar: Avatar,
    source: Source,
    sinks: Sequence[LiveSink],
    cfg: LiveConfig,
    *,
    vad: VadConfig | None = None,
    duration: float | None = None,
    stop: threading.Event | None = None,
    soak_interval: float | None = None,
    on_start: Callable[[LiveReport], None] | None = None,
) -> LiveReport:
    """Run until ``duration`` s of audio, the source ends, a sink asks to quit, or ``stop`` is set.

    ``engine`` is open. ``avatar`` gives the identity faces and how a rendered face becomes the image the
    sinks get (:func:`speech2vid.runtime.avatar.live_avatar`: the photo with the lower face composed in,
    or :meth:`Avatar.bare`); its eyes are needed for blinks with ``idle: alive`` (without them the face
    only sways). ``vad`` (default :class:`VadConfig`) decides what is speech. The source is opened and
    closed here, and so are the sinks, whatever happens: after a stop request or a failed microphone
    (``report.error``) files are finalised; after an engine error or an interrupt they are discarded and
    the exception propagates.
    """
    loop = LiveLoop(
        engine,
        avatar.faces,
        cfg,
        vad=vad or VadConfig(),
        eyes=avatar.eyes,
        present=avatar.present,
        sway_scale=avatar.sway_scale,
    )
    return loop.run(
        source, sinks, duration=duration, stop=stop or threading.Event(), soak_interval=soak_interval, on_start=on_start
    )


class LiveLoop:
    """One live run, in three parts that can be read alone: the audio side (:meth:`_read`: samples ->
    windows -> the speech gate -> the engine's worker), the frame side (:meth:`_collect`, :meth:`_emit`:
    finished slots shown in order, held frames repeated or dropped, idle motion, latency) and the
    run itself (:meth:`run`: open, loop, drain, close). The engine runs on :class:`InferenceWorker`."""

    def __init__(
        self,
        engine: TalkingFaceEngine,
        faces: Sequence[np.ndarray],
        cfg: LiveConfig,
        *,
        vad: VadConfig,
        eyes: tuple[EyeBox, ...] | None,
        present: Callable[[np.ndarray], np.ndarray] | None,
        sway_scale: float,
    ) -> None:
        self.cfg, self.engine, self.present, self.sway_scale = cfg, engine, present, sway_scale
        # A photo canvas composes from the rendered face with its motion (frames.rendered); the bare
        # face is shown as the picture it is.
        self.render = engine.render_faces if present is not None else engine.render
        self.report = report = LiveReport()
        engine.set_identity(list(faces))  # once: its features feed every frame
        self.gating = cfg.idle != "off"
        idle = idle_face(self.render, cfg.idle, gating=self.gating)  # its render also warms the backend up
        self.still, self.silence_col, self.animator = idle.still, idle.silence, idle.animator
        quiet = silence_window()[None]
        t = time.perf_counter()
        for _ in range(WARMUP_RENDERS):
            self.render(quiet)
        report.inference_ms = (time.perf_counter() - t) / WARMUP_RENDERS * 1e3
        # composed once: silence shows it every frame
        self.still_shown = present(self.still) if present is not None else self.still
        self.model_cols = model_cols = int(
            getattr(engine, "lookahead_columns", MAX_LOOKAHEAD_COLUMNS)
        )  # the model's right context
        emit_cols = model_cols if cfg.lookahead_columns is None else min(cfg.lookahead_columns, model_cols)
        if cfg.lookahead_columns is not None and cfg.lookahead_columns > model_cols:
            log.info(
                "live.lookahead_ms %.1f is more than the model reads past a frame: using the model's %.1f ms",
                cfg.lookahead_ms,
                lookahead_seconds(model_cols) * 1e3,
            )
        self.windows = StreamingWindows(emit_after_columns=emit_cols, lookahead_columns=model_cols)
        report.lookahead_ms = self.windows.lookahead_seconds * 1e3
        report.model_lookahead_ms = lookahead_seconds(model_cols) * 1e3
        self.late_ms = report.lookahead_ms + cfg.late_ms
        self.heard_right = round(report.lookahead_ms * SAMPLE_RATE / 1000)
        self.heard_left = (WINDOW_COLS - 1 - model_cols) * HOP  # the window's columns before the frame's time

        self.detector = SileroVAD() if self.gating and vad.detector == "silero" else None
        report.vad = "off" if not self.gating else vad.detector
        self.gate = SpeechGate(GateParams.from_ms(vad.threshold, vad.hangover_ms, vad.preroll_ms))
        pauses = PauseParams.from_db(vad.pause_below_db)
        self.pauses = PauseDetector(pauses) if self.detector is not None and pauses is not None else None
        self.eyes = tuple(eyes or ())

        self.clock, self.history = CaptureClock(), AudioHistory()
        self.done: dict[
            int, tuple[np.ndarray | None, bool]
        ] = {}  # finished slots waiting for their turn: (image or None = skipped, idle)
        self.pending: dict[int, FrameStamps] = {}  # stamps of frames in the engine
        self.idle_run = 0
        self.next_window = self.next_emit = 0
        self.last_image = self.still_shown
        self.measured_until = 0  # windows of frames below this index were completed by real audio
        self.recent: list[float] = []  # times of the last fresh images, for the overlay's fps
        self.soak_hist, self.soak_t = LatencyHistogram(), time.monotonic()
        self.soak_interval: float | None = None
        self.t_start = self.t_open = time.monotonic()
        self.sinks: Sequence[LiveSink] = ()
        self.worker: InferenceWorker | None = None

    # ------------------------------------------------------------------ levels

    def _window_level(self, k: int) -> float:
        # the part of frame k's window that has been heard (0.35 s ending R columns after its sample)
        centre = k * SAMPLES_PER_FRAME
        return frame_level_dbfs(self.history.span(centre - self.heard_left, centre + self.heard_right))

    def _frame_level(self, k: int) -> float:
        # the 40 ms of audio centred on frame k: what a level meter shows while the frame is on screen
        centre = k * SAMPLES_PER_FRAME
        return frame_level_dbfs(self.history.span(centre - SAMPLES_PER_FRAME // 2, centre + SAMPLES_PER_FRAME // 2))

    # ------------------------------------------------------------------ audio side

    def _frame_stamps(self, k: int, read_at: float) -> FrameStamps | None:
        centre = self.clock.time_of(k * SAMPLES_PER_FRAME)
        heard = self.clock.time_of(k * SAMPLES_PER_FRAME + self.heard_right - 1)
        if centre is None or heard is None:
            return None
        return FrameStamps(k, centre, heard, read_at, read_at)

    def _handle(self, k: int, window: np.ndarray, stamps: FrameStamps | None, *, wait: bool) -> None:
        """Frame ``k``'s window is complete: the still face for silence, else to the engine."""
        cfg, report = self.cfg, self.report
        if not self.gating:
            silent = False
        elif self.pauses is not None and self.pauses.decided(k) and self.pauses.is_pause(k):
            silent = True  # a pause between phrases, though Silero may still hear speech (features/pauses.py)
        elif self.detector is not None:
            cols = self.gate.at_samples(column_samples(np.array([k]), self.model_cols))[0]
            silent = not cols.any()
            if not silent and not cols.all():
                window = gate_windows(window[None], cols[None], self.silence_col)[0]
        else:
            self.idle_run = self.idle_run + 1 if self._window_level(k) < cfg.idle_threshold_dbfs else 0
            silent = self.idle_run >= cfg.idle_hold_frames
        if silent:
            self.done[k] = (
                self.still,
                True,
            )  # no inference: the still face (= the engine's output for an all-silent window)
            report.idle += 1
            return
        report.speech_frames += 1
        if stamps is not None:
            stamps.window = time.monotonic()
            stamps.staged = stamps.window
            self.pending[k] = stamps
        assert self.worker is not None
        replaced = self.worker.stage(k, window, wait=wait)
        if replaced is not None:
            self.done[replaced] = (None, False)
            self.pending.pop(replaced, None)
            report.skipped += 1

    def _flush(self) -> None:
        """End of audio: the remaining frames, their right context padded with silence like the batch mapping."""
        if self.detector is not None:
            self.gate.push(self.detector.flush())
        if self.pauses is not None:
            self.pauses.finish()
        n_total = n_frames_for(self.report.audio_samples)
        for w in self.windows.flush():
            if self.next_window < n_total:
                self._handle(self.next_window, w, None, wait=True)
                self.next_window += 1
        while self.next_emit < self.next_window:
            self._collect(block=True)

    def _read(self, samples: np.ndarray, stamps: Any, read_at: float, *, wait: bool) -> None:
        """New captured samples: clock, history, the sinks' audio, the VAD, and every window they complete."""
        report = self.report
        if report.audio_samples == 0:
            log.info("capturing: first audio %.2f s after the source opened", time.monotonic() - self.t_open)
        self.clock.add(stamps)
        self.history.push(samples)
        for s in self.sinks:
            s.write_audio(samples)
        report.audio_samples += samples.shape[0]
        if self.detector is not None:
            self.gate.push(self.detector.push(samples))
        if self.pauses is not None:
            self.pauses.push(samples)
        for w in self.windows.push(samples):
            self._handle(self.next_window, w, self._frame_stamps(self.next_window, read_at), wait=wait)
            self.next_window += 1
        self.measured_until = self.next_window
        self.gate.trim((self.next_window * SAMPLES_PER_FRAME) // VAD_CHUNK - VAD_KEEP_CHUNKS)
        if self.pauses is not None:
            self.pauses.trim(self.next_window)

    # ------------------------------------------------------------------ frame side

    def _collect(self, block: bool) -> None:
        """Take the engine's finished frames, then show every slot that is next in order."""
        assert self.worker is not None
        while True:
            try:
                k, frame, exc, started, finished = (
                    self.worker.results.get(timeout=POLL_SECONDS) if block else self.worker.results.get_nowait()
                )
            except queue.Empty:
                break
            if exc is not None:
                raise exc
            self.done[k] = (frame, False)
            st = self.pending.get(k)
            if st is not None:
                st.started, st.rendered = started, finished
            self.report.rendered += 1
            block = False
        while self.next_emit in self.done:
            frame, idle = self.done.pop(self.next_emit)
            self._emit(self.next_emit, frame, idle)
            self.next_emit += 1

    def _emit(self, k: int, frame: np.ndarray | None, idle: bool) -> None:
        """Show slot ``k``: its image (or the held one), idle motion, to every sink that takes it; latency."""
        cfg, report = self.cfg, self.report
        fresh = frame is not None
        if frame is None:
            image = self.last_image
        elif frame is self.still:
            image = self.still_shown
        else:
            image = self.present(frame) if self.present is not None else frame
        if not fresh:
            if cfg.drop_policy == "repeat":
                report.repeated += 1
            else:
                report.dropped += 1
        self.last_image = image
        if self.animator is not None:
            image = animate(image, self.animator.step(idle).scaled(self.sway_scale), self.eyes)
        targets = [s for s in self.sinks if fresh or cfg.drop_policy == "repeat" or not s.realtime]
        now = time.monotonic()
        recent = self.recent
        if fresh:
            recent.append(now)
            del recent[: max(0, len(recent) - FPS)]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        captured = self.clock.time_of(k * SAMPLES_PER_FRAME) if fresh and k < self.measured_until else None
        latency = None if captured is None else (now - captured) * 1e3
        info = FrameInfo(k, fresh, latency, self._frame_level(k), fps, report.dropped + report.repeated, idle)
        for s in targets:
            s.write(image, info)
        st = self.pending.pop(k, None)
        if captured is not None:
            shown = time.monotonic()
            latency = (shown - captured) * 1e3  # after the sinks: the frame has been shown
            report.latency.add(latency)
            self.soak_hist.add(latency)
            if latency > self.late_ms:
                report.late += 1
            if st is not None:
                st.emitted, st.shown = now, shown
                report.add_stamps(st)
        report.frames += 1

    def _sample_soak(self, final: bool = False) -> None:
        now = time.monotonic()
        if self.soak_interval is None or (
            now - self.soak_t < self.soak_interval and not (final and self.soak_hist.count)
        ):
            return
        report = self.report
        report.soak.append(
            {
                "t_s": round(now - self.t_start, 1),
                "rss_mb": round(rss_mb(), 1),
                "frames": report.frames,
                "latency_median_ms": self.soak_hist.quantile(0.5),
                "latency_p99_ms": self.soak_hist.quantile(0.99),
            }
        )
        log.info(
            "soak %.0f s: RSS %.1f MiB, latency median %s ms, p99 %s ms",
            now - self.t_start,
            report.soak[-1]["rss_mb"],
            report.soak[-1]["latency_median_ms"],
            report.soak[-1]["latency_p99_ms"],
        )
        self.soak_hist, self.soak_t = LatencyHistogram(), now

    # ------------------------------------------------------------------ the run

    def run(
        self,
        source: Source,
        sinks: Sequence[LiveSink],
        *,
        duration: float | None,
        stop: threading.Event,
        soak_interval: float | None,
        on_start: Callable[[LiveReport], None] | None,
    ) -> LiveReport:
        """Chunk by chunk: capture -> features and speech gate -> engine -> sinks, until something ends the run
        (:meth:`_ended`); then the engine drained and everything closed, whatever happened."""
        self.sinks, self.soak_interval = sinks, soak_interval
        self.worker = InferenceWorker(self.render)
        limit = None if duration is None else round(duration * SAMPLE_RATE)
        wait = isinstance(source, PacedSource) and not source.realtime  # no real-time deadline to keep
        completed = False
        try:
            source.open()
            try:
                self._started(source, on_start)
                while not self._ended(source, stop, limit):
                    chunk = source.read(POLL_SECONDS)  # capture
                    read_at = time.monotonic()
                    samples = chunk.samples[: None if limit is None else limit - self.report.audio_samples]
                    if samples.size:
                        self._read(samples, chunk.stamps, read_at, wait=wait)  # features, speech gate, engine
                    self._collect(block=self.worker.in_flight > 0 and samples.size == 0)  # sinks
                    self._sample_soak()
            except SourceError as exc:
                self._fail("source failed", exc)
            except OutputError as exc:  # a file sink could not write (a full disk): its file is gone
                self._fail("output failed", exc)
            finally:
                source.close()
            self._drain()
            completed = True
        finally:
            self._close(source, sinks, completed=completed)
        return self.report

    def _started(self, source: Source, on_start: Callable[[LiveReport], None] | None) -> None:
        raise_priority(self.cfg.nice)  # the loop, the engine's worker and its pool, the sinks' threads
        report = self.report
        block_ms = 1e3 * getattr(source, "blocksize", SAMPLES_PER_FRAME) / SAMPLE_RATE
        report.expected_latency_ms = report.lookahead_ms + block_ms + report.inference_ms
        if on_start is not None:
            on_start(report)  # after open(): the summary can name the device's real rate
        self.t_open = time.monotonic()

    def _ended(self, source: Source, stop: threading.Event, limit: int | None) -> bool:
        """Whether the run is over, with the reason in ``report.ended``."""
        report = self.report
        if stop.is_set():
            report.ended = "stopped"
        elif any(s.quit_requested for s in self.sinks):
            report.ended = "window closed"
        elif limit is not None and report.audio_samples >= limit:
            report.ended = "duration reached"
        elif source.finished:
            report.ended = "source ended"
        return bool(report.ended)

    def _fail(self, ended: str, exc: Exception) -> None:
        self.report.ended, self.report.error = ended, str(exc)

    def _drain(self) -> None:
        """The frames still owed once the audio stopped (unless a file could not be written), the last soak sample."""
        if self.report.ended != "output failed":
            try:
                self._flush()
            except OutputError as exc:
                self._fail("output failed", exc)
        self._sample_soak(final=True)

    def _close(self, source: Source, sinks: Sequence[LiveSink], *, completed: bool) -> None:
        """Stop the worker, note what the source and the animator saw, and close every sink: an engine error or
        a crash (not ``completed``) discards files; a failed microphone does not."""
        assert self.worker is not None
        report = self.report
        self.worker.close()
        report.max_in_flight = self.worker.max_in_flight
        report.overflows = source.overflows
        report.reopens = getattr(source, "reopens", 0)
        report.mic_lost_seconds = getattr(source, "lost_seconds", 0.0)
        report.wall_seconds = time.monotonic() - self.t_start
        report.blinks = self.animator.blink_count if self.animator is not None else 0
        report.blink_frames = list(self.animator.blinks) if self.animator is not None else []
        errors: list[Exception] = []
        for s in sinks:
            try:
                s.close(abort=not completed)
            except OutputError as exc:  # a file that could not be finished (a full disk): reported, not raised
                if completed and report.error is None:
                    self._fail("output failed", exc)
            except Exception as exc:  # close the others; the first failure is raised below
                errors.append(exc)
        if errors and completed:
            raise errors[0]
