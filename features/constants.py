"""Constants of the MFCC front end (MODEL.md, "Audio front end"), each named once."""

from __future__ import annotations

from speech2vid.audio.constants import SAMPLE_RATE as SAMPLE_RATE  # re-exported: part of the front end's constants


def exact_div(x: int, y: int) -> int:
    """``x // y``, refusing an inexact division so that derived constants cannot drift silently."""
    if x % y != 0:
        raise ValueError(f"{x} is not divisible by {y}")
    return x // y


FRAME_MS = 25
HOP_MS = 10
FRAME_LEN = exact_div(SAMPLE_RATE * FRAME_MS, 1000)  # 400 samples
HOP = exact_div(SAMPLE_RATE * HOP_MS, 1000)  # 160 samples
MFCC_RATE = exact_div(SAMPLE_RATE, HOP)  # 100 columns per second
N_FFT = 512
N_BINS = N_FFT // 2 + 1  # 257 rfft bins
PREEMPHASIS = 0.97
N_MELS = 40
MEL_FMIN_HZ = 300.0
MEL_FMAX_HZ = 3700.0
N_MFCC = 13
LIFTER = 22
