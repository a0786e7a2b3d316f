"""A speech file streamed into the offline pipelines: MFCC windows on demand, the original audio to the sink.

``generate`` and ``redub`` used to decode the whole file, resample it and cut every window before the
first frame, which made their memory grow with the length of the audio (3.9 GB for two hours). Here the
file is decoded block by block (:func:`speech2vid.audio.io.speech_blocks`), the 16 kHz signal goes
through :class:`~speech2vid.features.windows.StreamingWindows` (the same windows as the batch mapping),
and each decoded block of the original audio is handed to ``audio_out`` (the MP4 sink, which encodes it
as the video catches up and then drops it). Only the windows between the oldest one still wanted and
the newest one decoded are held: a few batches at most.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from speech2vid.audio.io import Audio, SpeechInfo, speech_blocks
from speech2vid.features.vad import WindowGate
from speech2vid.features.windows import N_CEPS, WINDOW_COLS, StreamingWindows, n_frames_for


class SpeechFeed:
    """Windows of a speech file by non-decreasing frame index, decoding only as far as asked.

    Args:
        info: the file's :func:`~speech2vid.audio.io.scan_speech` result (its length fixes the frame count).
        audio_out: receives every decoded block of the original audio, float32 ``(n, channels)``, in order.
        lookahead_columns: the model's right context (``TalkingFaceEngine.lookahead_columns``).
        gate: voice activity (:class:`~speech2vid.features.vad.WindowGate`): non-speech columns become silence.
    """

    def __init__(
        self,
        info: SpeechInfo,
        audio_out: Callable[[np.ndarray], None],
        lookahead_columns: int = 17,
        gate: WindowGate | None = None,
    ) -> None:
        self._gate = gate
        self.info = info
        self.n_windows = n_frames_for(info.n_samples_16k)
        self._audio_out = audio_out
        self._blocks: Iterator[tuple[Audio, np.ndarray]] = speech_blocks(info.path)
        self._stream = StreamingWindows(lookahead_columns=lookahead_columns)
        self._held = np.empty((0, N_CEPS, WINDOW_COLS), dtype=np.float32)
        self._base = 0  # frame index of self._held[0]
        self._done = False

    def windows(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """float32 ``(len(indices), 12, 35)``: the windows of those frames.

        Indices must be within ``0 .. n_windows - 1`` and never smaller than any index of an earlier
        call (frames come in order; re-dubbing at 30 fps asks for some windows twice).
        """
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            return np.empty((0, N_CEPS, WINDOW_COLS), dtype=np.float32)
        if idx.min() < self._base or idx.max() >= self.n_windows:
            raise ValueError(f"window indices {idx.min()}..{idx.max()} outside {self._base}..{self.n_windows - 1}")
        while self._base + len(self._held) <= idx.max() and not self._done:
            self._pull()
        if self._base + len(self._held) <= idx.max():  # the file changed between the scan and this pass
            raise ValueError(f"the audio ended after {self._base + len(self._held)} of {self.n_windows} windows")
        out = self._held[idx - self._base]
        keep_from = int(idx.max()) - self._base  # later calls start at idx.max() or after it
        self._held, self._base = self._held[keep_from:], self._base + keep_from
        return out

    def finish(self) -> None:
        """Decode to the end, so that ``audio_out`` has received every sample of the file."""
        while not self._done:
            self._pull()

    def _pull(self) -> None:
        block = next(self._blocks, None)
        if block is None:
            new = self._stream.flush()
            self._done = True
            if self._gate is not None:
                self._gate.flush_audio()
                new = self._gate.gate(new, final=True)
        else:
            original, mono16 = block
            if original.n_samples:
                self._audio_out(original.samples)
            new = self._stream.push(mono16)
            if self._gate is not None:
                self._gate.push_audio(mono16)
                new = self._gate.gate(new)
        if len(new):
            # Windows past the scanned count can only come from a file that grew meanwhile: ignore them.
            room = self.n_windows - (self._base + len(self._held))
            self._held = np.concatenate((self._held, new[: max(room, 0)]))
