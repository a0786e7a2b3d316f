"""A voice agent's last step: text-to-speech streamed into the avatar, chunk by chunk (the README's example).

eSpeak NG writes its speech to a pipe as it synthesises it; every chunk read goes straight into
``speech2vid.Avatar.push``, and each frame that comes back is written to an MP4 with the speech (a
browser or a window would show it instead).

    python docs/avatar_from_tts.py "Hello! I am the speech2vid avatar." -o hello.mp4 [--face me.jpg]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np

import speech2vid
from speech2vid.assets import sample_face
from speech2vid.audio.io import Audio
from speech2vid.sinks.video_file import VideoFileSink

WAV_HEADER = 44  # bytes before the samples in eSpeak NG's --stdout WAV (16-bit mono)
RATE = 22050  # eSpeak NG's sample rate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("text")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--face", default=str(sample_face()))
    args = p.parse_args()

    tts = subprocess.Popen(["espeak-ng", "--stdout", args.text], stdout=subprocess.PIPE)
    assert tts.stdout is not None
    tts.stdout.read(WAV_HEADER)
    with (
        speech2vid.Avatar(face=args.face) as avatar,
        VideoFileSink(args.output, fps=25, size=avatar.size, audio_rate=16000, audio_channels=1) as sink,
    ):

        def show(frames: list[speech2vid.Frame]) -> None:
            for frame in frames:
                sink.write(frame.image)
                sink.write_audio(frame.audio_16k[:, None])

        pending = b""
        while chunk := tts.stdout.read(4096):  # as eSpeak NG produces it
            pending += chunk
            usable = len(pending) // 2 * 2  # whole 16-bit samples
            show(avatar.push(np.frombuffer(pending[:usable], np.int16), RATE))
            pending = pending[usable:]
        show(avatar.end_of_speech())  # the mouth closes
        show(avatar.idle(12))  # half a second of the face at rest
    if tts.wait() != 0:
        print("espeak-ng failed", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
