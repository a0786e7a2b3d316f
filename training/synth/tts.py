"""Offline speech with a phoneme timeline, from the eSpeak NG library itself (Debian: ``espeak-ng``).

The library is called through ctypes (``libespeak-ng.so.1``, no Python binding needed) in synchronous
mode with phoneme events switched on (``espeakINITIALIZE_PHONEME_EVENTS``): the synthesiser reports
each phoneme's mnemonic and the sample where its sound starts, so the timeline is the one the audio
was made from, not an estimate. A phoneme ends where the next one starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass

import numpy as np

from speech2vid.errors import UserError

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7

VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "croak")


class TTSUnavailable(UserError):
    """eSpeak NG is not installed."""


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True, eq=False)
class Speech:
    """Synthesised speech.

    Attributes:
        samples: float32 ``(n,)`` mono in [-1, 1].
        rate: samples per second (22050 for eSpeak NG).
        phonemes: ``(phoneme, start_s, end_s)`` in order, from the synthesiser's events.
    """

    samples: np.ndarray
    rate: int
    phonemes: tuple[tuple[str, float, float], ...]

    @property
    def duration(self) -> float:
        return self.samples.size / self.rate


class _Engine:
    """The process-wide eSpeak NG library (it keeps global state: one per process).

    That state (wave phase, pitch flutter, echo buffer, its random generator) runs on from one utterance
    to the next: a sentence spoken after other speech comes out slightly different, its phonemes a few
    samples apart (reseeding the C library's rand(), which it uses, does not undo this). Speech is a
    function of its arguments only in a fresh process: see ``synth.speech.speech_in_fresh_process``.
    """

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            raise TTSUnavailable(
                "eSpeak NG is not installed: apt-get install espeak-ng (the synthetic corpus needs its speech)"
            ) from None
        lib = self.lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 200, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise TTSUnavailable(
                "eSpeak NG failed to initialise (its data files are missing?): apt-get install espeak-ng"
            )
        self.rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str, int]] = []  # (type, phoneme, sample)
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: the library calls it later
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], n: int, events: ctypes._Pointer[_Event]) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append((e.type, e.id.string.decode("ascii", "replace"), int(e.sample)))
            elif e.type in (_EVENT_END, _EVENT_MSG_TERMINATED):
                self._events.append((e.type, "", int(e.sample)))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> Speech:
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for param, value in ((_RATE, rate_wpm), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100), (_WORDGAP, 0)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        err = lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with error {err}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        samples = pcm.astype(np.float32) / 32768.0
        n = samples.size
        marks = [(p, s) for t, p, s in self._events if t == _EVENT_PHONEME]
        phonemes = []
        for k, (p, s) in enumerate(marks):
            end = marks[k + 1][1] if k + 1 < len(marks) else n
            if end > s and p.strip():
                phonemes.append((p.strip(), s / self.rate, min(end, n) / self.rate))
        return Speech(samples, self.rate, tuple(phonemes))


@functools.lru_cache(maxsize=1)
def _engine() -> _Engine:
    return _Engine()


def synthesize(
    text: str, voice: str = "en-us", *, rate_wpm: int = 160, pitch: int = 50, pitch_range: int = 50
) -> Speech:
    """Speak ``text`` with eSpeak NG. ``voice`` is a language (``en-us``) optionally with a variant (``en-us+f3``).

    Returns:
        :class:`Speech` with the phoneme timeline the synthesiser reported.
    """
    return _engine().synth(text, voice, rate_wpm, pitch, pitch_range)
