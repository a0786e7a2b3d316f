"""Voice activity: which parts of the audio are speech, so that only speech moves the lips.

The detector is Silero VAD (MIT licence), its 16 kHz ONNX graph run with ONNX Runtime (no PyTorch):
``assets/vad/silero_vad_16k_op15.onnx`` from the ``silero-vad`` 6.2.3 wheel (provenance in
``assets/README.md``). The graph takes 512-sample chunks (32 ms) with the previous chunk's last 64
samples prepended and carries a recurrent state; it returns one speech probability per chunk.

Decisions, in order (pure functions of the probabilities; streaming gives the same as the whole signal):

1. *Hysteresis* (Silero's own ``VADIterator`` rule): speech starts at a chunk with ``p >= threshold`` and
   ends once ``hangover`` chunks in a row have ``p < threshold - 0.15``, so words are not clipped at
   their soft ends.
2. *Pre-roll*: a speech run also claims the ``preroll`` chunks before the chunk that started it (an
   onset's first consonant is heard before the probability crosses the threshold).
3. *Pauses* (:mod:`speech2vid.features.pauses`): a frame inside a run of frames far quieter than the
   speech around it is not speech at all, whatever Silero still says.
4. *Columns*: MFCC column ``c`` of a frame window (centred on sample ``s``) is speech when the chunk
   holding sample ``s`` is speech. :func:`gate_windows` replaces every non-speech column with the MFCC of
   digital silence: noise between words reaches the network as silence, and a window without any
   speech column *is* the silence window, whose rendering is the still, closed-mouth face.
   Transitions are as smooth as the network's response to speech after silence.

In the live loop a column whose chunk has not been classified yet (the newest ~32 ms) counts as
non-speech; later frames, whose windows hold that column further left, see the final decision.
:class:`WindowGate` (``generate``, streamed) waits for each window's decision instead, so that it equals
gating the whole signal at once (:func:`gate_signal_windows`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech2vid.features.constants import HOP, SAMPLE_RATE
from speech2vid.features.pauses import PauseDetector, PauseParams
from speech2vid.features.windows import LEFT_PAD, N_CEPS, SAMPLES_PER_FRAME, WINDOW_COLS, StreamingWindows

log = logging.getLogger("speech2vid.features.vad")

VAD_CHUNK = 512  # samples per Silero call at 16 kHz (32 ms): the only size the 16 kHz graph takes
VAD_CONTEXT = 64  # samples of the previous chunk prepended to each chunk (Silero's streaming convention)
VAD_STATE_SHAPE = (2, 1, 128)  # the recurrent state carried between calls
NEG_THRESHOLD_GAP = 0.15  # speech ends below threshold - 0.15 (Silero's default hysteresis)
CHUNK_MS = 1000 * VAD_CHUNK / SAMPLE_RATE  # 32.0 ms


def default_model_path() -> Path:
    """The vendored Silero VAD 16 kHz ONNX graph (1.3 MB, MIT)."""
    from speech2vid.assets import silero_vad_model

    return silero_vad_model()


@dataclass(frozen=True)
class GateParams:
    """How probabilities become speech; see the module docstring.

    Attributes:
        threshold: a chunk with this speech probability or more starts speech.
        hangover: chunks in a row below ``threshold - 0.15`` that end it.
        preroll: chunks before the starting chunk that also count as speech.
    """

    threshold: float = 0.5
    hangover: int = 3  # 96 ms
    preroll: int = 2  # 64 ms

    @classmethod
    def from_ms(cls, threshold: float, hangover_ms: float, preroll_ms: float) -> "GateParams":
        return cls(threshold, max(0, round(hangover_ms / CHUNK_MS)), max(0, round(preroll_ms / CHUNK_MS)))


class SileroVAD:
    """Streaming Silero VAD on ONNX Runtime: :meth:`push` samples, get one probability per full chunk.

    One intra-op thread: a chunk costs well under a millisecond and the engine needs the cores.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        path = Path(model_path) if model_path is not None else default_model_path()
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Start a new signal."""
        self._state = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        self._buf = np.zeros(VAD_CONTEXT, dtype=np.float32)  # context + samples not yet in a full chunk
        self.chunks = 0  # chunks classified so far

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed ``(n,)`` float samples at 16 kHz; returns float32 ``(m,)`` probabilities of the chunks completed."""
        self._buf = np.concatenate((self._buf, np.asarray(samples, dtype=np.float32)))
        m = (self._buf.shape[0] - VAD_CONTEXT) // VAD_CHUNK
        out = np.empty(m, dtype=np.float32)
        for j in range(m):
            x = self._buf[j * VAD_CHUNK : (j + 1) * VAD_CHUNK + VAD_CONTEXT][None]
            prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
            out[j] = prob[0, 0]
        self._buf = self._buf[m * VAD_CHUNK :]
        self.chunks += m
        return out

    def flush(self) -> np.ndarray:
        """End of signal: the last partial chunk zero-padded (as :meth:`probabilities` does); 0 or 1 probabilities."""
        pending = self._buf.shape[0] - VAD_CONTEXT
        return self.push(np.zeros((-pending) % VAD_CHUNK, dtype=np.float32))

    def probabilities(self, signal: np.ndarray) -> np.ndarray:
        """Offline: float32 ``(ceil(n / 512),)`` probabilities of a whole signal, its last chunk zero-padded."""
        self.reset()
        n = np.shape(signal)[0]
        padded = np.zeros(-(-n // VAD_CHUNK) * VAD_CHUNK, dtype=np.float32)
        padded[:n] = signal
        return self.push(padded)


class SpeechGate:
    """Hysteresis over chunk probabilities, streaming: :meth:`push` probabilities, read :attr:`speech`.

    ``speech`` is a bool array over every chunk seen so far (pre-roll may turn earlier chunks on when a
    run starts). It is bounded by :meth:`trim`, which forgets chunks before a given index.
    """

    def __init__(self, params: GateParams = GateParams()):
        self.params = params
        self._neg = params.threshold - NEG_THRESHOLD_GAP
        self.speech = np.zeros(0, dtype=bool)
        self.offset = 0  # chunk index of speech[0]
        self._active = False
        self._below = 0

    @property
    def chunks(self) -> int:
        return self.offset + self.speech.shape[0]

    def push(self, probs: np.ndarray) -> None:
        p = self.params
        start = self.speech.shape[0]
        self.speech = np.concatenate((self.speech, np.zeros(len(probs), dtype=bool)))
        for j, prob in enumerate(np.asarray(probs, dtype=np.float64)):
            i = start + j
            if not self._active:
                if prob >= p.threshold:
                    self._active, self._below = True, 0
                    self.speech[max(0, i - p.preroll) : i + 1] = True
            else:
                self._below = self._below + 1 if prob < self._neg else 0
                if self._below > p.hangover:
                    self._active = False
                else:
                    self.speech[i] = True

    def at_samples(self, samples: np.ndarray) -> np.ndarray:
        """bool, shape of ``samples``: whether each 16 kHz sample index lies in a speech chunk (False when
        its chunk is not classified yet, or was trimmed, or the index is negative)."""
        idx = np.asarray(samples) // VAD_CHUNK - self.offset
        ok = (idx >= 0) & (idx < self.speech.shape[0]) & (np.asarray(samples) >= 0)
        out = np.zeros(np.shape(samples), dtype=bool)
        out[ok] = self.speech[idx[ok]]
        return out

    def trim(self, before_chunk: int) -> None:
        """Forget chunks with index below ``before_chunk`` (the live loop keeps memory flat)."""
        drop = min(max(0, before_chunk - self.offset), self.speech.shape[0])
        if drop:
            self.speech = self.speech[drop:]
            self.offset += drop


def speech_mask(probs: np.ndarray, params: GateParams = GateParams()) -> np.ndarray:
    """bool ``(m,)``: the chunks that are speech, from their float ``(m,)`` probabilities."""
    gate = SpeechGate(params)
    gate.push(probs)
    return gate.speech


def column_samples(frame_indices: np.ndarray, lookahead_columns: int = 17) -> np.ndarray:
    """int64 ``(n, 35)``: the 16 kHz sample each window column is centred on.

    Frame ``k``'s window ends ``R = lookahead_columns`` columns after its time (sample ``640 k``), so its
    column ``i`` is centred on sample ``640 k + 160 (i - 34 + R)``; ``R = 17`` is the centred window
    (features/windows.py).
    """
    k = np.asarray(frame_indices, dtype=np.int64)[:, None]
    return k * SAMPLES_PER_FRAME + HOP * (
        np.arange(WINDOW_COLS, dtype=np.int64)[None] - (WINDOW_COLS - 1) + lookahead_columns
    )


def silence_column() -> np.ndarray:
    """float32 ``(12,)``: cepstra 1..12 of the MFCC of digital silence (what an unheard column holds)."""
    return np.array(StreamingWindows().push(np.zeros(LEFT_PAD + 1, dtype=np.float32))[0][:, 0], dtype=np.float32)


def gate_windows(windows: np.ndarray, speech_columns: np.ndarray, silence: np.ndarray | None = None) -> np.ndarray:
    """Windows with every non-speech column replaced by the MFCC of silence.

    Args:
        windows: float32 ``(n, 12, 35)``.
        speech_columns: bool ``(n, 35)``, True where the column is speech.
        silence: ``(12,)`` the silence column (default :func:`silence_column`).

    Returns:
        float32 ``(n, 12, 35)``, a new array.
    """
    if windows.shape[0] != speech_columns.shape[0] or windows.shape[2] != speech_columns.shape[1]:
        raise ValueError(f"windows {windows.shape} and speech columns {speech_columns.shape} do not match")
    sil = silence_column() if silence is None else silence
    return np.where(speech_columns[:, None, :], windows, sil[None, :, None]).astype(np.float32)


class WindowGate:
    """Offline streaming gate: audio and its windows in, gated windows out once their decision is final.

    A window's columns are decided once the VAD has classified the chunk of its last column plus the
    pre-roll after it (a later onset can still claim earlier chunks); windows wait here until then, so
    the result equals :func:`gate_signal_windows` on the whole signal. Memory: the windows of about
    ``(32 ms x (1 + preroll)) + 40 ms`` of audio, and VAD decisions trimmed behind them.
    """

    def __init__(
        self,
        params: GateParams = GateParams(),
        lookahead_columns: int = 17,
        vad: SileroVAD | None = None,
        pauses: PauseParams | None = PauseParams(),
    ):
        self._pauses = PauseDetector(pauses) if pauses is not None else None
        self._vad = vad or SileroVAD()
        self._vad.reset()
        self._gate = SpeechGate(params)
        self._r = lookahead_columns
        self._silence = silence_column()
        self._pending = np.empty((0, N_CEPS, WINDOW_COLS), dtype=np.float32)
        self._first = 0  # frame index of _pending[0]

    def push_audio(self, samples_16k: np.ndarray) -> None:
        self._gate.push(self._vad.push(samples_16k))
        if self._pauses is not None:
            self._pauses.push(samples_16k)

    def gate(self, windows: np.ndarray, *, final: bool = False) -> np.ndarray:
        """Queue the next windows (in frame order); returns the gated windows now decided (possibly none).

        ``final``: the audio has ended (call :meth:`flush_audio` first): everything queued is returned.
        """
        self._pending = np.concatenate((self._pending, windows)) if len(windows) else self._pending
        n = len(self._pending)
        if n == 0:
            return self._pending[:0]
        frames = np.arange(self._first, self._first + n)
        last_col = column_samples(frames, self._r)[:, -1]
        decided = n if final else int(np.sum(last_col // VAD_CHUNK + self._gate.params.preroll < self._gate.chunks))
        if self._pauses is not None and not final:
            decided = min(decided, max(0, self._pauses.known - self._pauses.params.after - self._first))
        cols = self._gate.at_samples(column_samples(frames[:decided], self._r))
        if self._pauses is not None:
            cols[[self._pauses.is_pause(int(k)) for k in frames[:decided]]] = False  # the still face
            self._pauses.trim(self._first + decided)
        out = gate_windows(self._pending[:decided], cols, self._silence)
        self._pending, self._first = self._pending[decided:], self._first + decided
        self._gate.trim(self._first * SAMPLES_PER_FRAME // VAD_CHUNK - 64)
        return out

    def flush_audio(self) -> None:
        """End of audio: the VAD's last partial chunk, zero-padded."""
        self._gate.push(self._vad.flush())
        if self._pauses is not None:
            self._pauses.finish()


def is_silent(windows: np.ndarray, silence: np.ndarray | None = None) -> np.ndarray:
    """bool ``(n,)``: windows every column of which is the MFCC of silence (gated, or digital silence)."""
    sil = silence_column() if silence is None else silence
    return np.asarray(np.all(windows == sil[None, :, None], axis=(1, 2)), dtype=bool)


def gate_signal_windows(
    windows: np.ndarray,
    signal_16k: np.ndarray,
    params: GateParams = GateParams(),
    vad: SileroVAD | None = None,
    lookahead_columns: int = 17,
    pauses: PauseParams | None = PauseParams(),
) -> tuple[np.ndarray, np.ndarray]:
    """Offline: gate the ``(n, 12, 35)`` windows of a whole 16 kHz signal by its voice activity.

    Returns:
        (gated float32 ``(n, 12, 35)``, bool ``(n,)`` True for frames with at least one speech column).
    """
    probs = (vad or SileroVAD()).probabilities(signal_16k)
    gate = SpeechGate(params)
    gate.push(probs)
    cols = gate.at_samples(column_samples(np.arange(windows.shape[0]), lookahead_columns))
    if pauses is not None:
        detector = PauseDetector(pauses)
        detector.push(signal_16k)
        detector.finish()
        cols[[detector.is_pause(k) for k in range(windows.shape[0])]] = False
    return gate_windows(windows, cols), np.asarray(cols.any(axis=1), dtype=bool)
