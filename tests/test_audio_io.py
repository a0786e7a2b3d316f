"""speech2vid.audio.io: decoding many formats, resampling to 16 kHz, and one-line AudioErrors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from speech2vid.audio.io import (
    SAMPLE_RATE,
    Audio,
    check_not_silent,
    load_speech,
    peak_dbfs,
    read_audio,
    to_model_rate,
)
from speech2vid.errors import AudioError

TONE_HZ = 440.0


def tone(rate: int, seconds: float = 1.0, hz: float = TONE_HZ, amplitude: float = 0.5) -> np.ndarray:
    """float32 (n,) sine."""
    t = np.arange(int(round(rate * seconds))) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.argmax(spectrum) * rate / signal.size)


def encode(path: Path, samples: np.ndarray, rate: int, codec: str, video: bool = False) -> None:
    """Write (n, channels) float32 samples with PyAV, optionally beside a tiny video stream."""
    layout = "mono" if samples.shape[1] == 1 else "stereo"
    with av.open(str(path), mode="w") as out:
        if video:
            vstream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
            vstream.width = vstream.height = 64
            vstream.pix_fmt = "yuv420p"
        astream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(astream, av.AudioStream)
        if video:
            for i in range(int(samples.shape[0] / rate * 25)):
                image = np.full((64, 64, 3), (i * 8) % 256, dtype=np.uint8)
                out.mux(vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        block = 1024
        for start in range(0, samples.shape[0], block):
            planar = np.ascontiguousarray(samples[start : start + block].T)
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
        if video:
            out.mux(vstream.encode(None))


def video_only(path: Path) -> None:
    with av.open(str(path), mode="w") as out:
        vstream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        vstream.width = vstream.height = 64
        vstream.pix_fmt = "yuv420p"
        for i in range(10):
            out.mux(vstream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        out.mux(vstream.encode(None))


def expect_audio_error(path: Path, *fragments: str) -> str:
    with pytest.raises(AudioError) as info:
        load_speech(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    for fragment in fragments:
        assert fragment in message
    return message


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_wav_any_rate_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"tone_{rate}.wav"
    written = tone(rate)
    sf.write(path, written, rate, subtype="PCM_16")
    audio, signal = load_speech(path)
    assert audio.rate == rate and audio.channels == 1 and audio.samples.dtype == np.float32
    assert audio.n_samples == written.size
    np.testing.assert_allclose(audio.samples[:, 0], written, atol=1.0 / 2**15)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert abs(signal.size - SAMPLE_RATE) <= 1
    assert abs(peak_hz(signal, SAMPLE_RATE) - TONE_HZ) <= 1.0
    # soxr HQ keeps the level: an amplitude-0.5 tone stays at 0.5 away from the edges.
    assert abs(np.abs(signal[2000:-2000]).max() - 0.5) < 0.01


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_sample_formats_scaled_to_unit_range(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / f"{subtype}.wav"
    written = tone(16000, 0.5)
    sf.write(path, written, 16000, subtype=subtype)
    audio = read_audio(path)
    np.testing.assert_allclose(audio.samples[:, 0], written, atol=1.0 / 2**7)


def test_stereo_keeps_channels_and_mixes_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left, right = tone(44100, hz=440.0), tone(44100, hz=660.0, amplitude=0.25)
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.channels == 2 and audio.rate == 44100
    np.testing.assert_allclose(audio.samples, np.stack([left, right], axis=1), atol=1e-7)
    np.testing.assert_allclose(audio.mono().samples[:, 0], (left + right) / 2, atol=1e-7)
    assert audio.duration == pytest.approx(1.0)
    mono16 = to_model_rate(audio)
    assert abs(mono16.size - SAMPLE_RATE) <= 1
    assert abs(peak_hz(mono16, SAMPLE_RATE) - 440.0) <= 1.0


def test_flac(tmp_path: Path) -> None:
    path = tmp_path / "tone.flac"
    sf.write(path, tone(22050), 22050, subtype="PCM_16")
    audio, signal = load_speech(path)
    assert audio.rate == 22050 and audio.n_samples == 22050
    assert abs(peak_hz(signal, SAMPLE_RATE) - TONE_HZ) <= 1.0


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [(".mp3", "libmp3lame", 44100), (".ogg", "libopus", 48000), (".m4a", "aac", 22050)],
)
def test_lossy_formats(tmp_path: Path, suffix: str, codec: str, rate: int) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    path = tmp_path / f"tone{suffix}"
    encode(path, tone(rate, 2.0)[:, None], rate, codec)
    audio, signal = load_speech(path)
    assert audio.rate == rate and audio.channels == 1
    # Encoders add priming/padding; the decoded length stays within a few codec frames.
    assert abs(audio.duration - 2.0) < 0.1
    assert abs(peak_hz(signal, SAMPLE_RATE) - TONE_HZ) <= 1.0
    assert np.abs(audio.samples).max() <= 1.0


def test_audio_track_of_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode(path, np.stack([tone(48000, 2.0)] * 2, axis=1), 48000, "aac", video=True)
    audio, signal = load_speech(path)
    assert audio.rate == 48000 and audio.channels == 2
    assert abs(audio.duration - 2.0) < 0.1
    assert abs(peak_hz(signal, SAMPLE_RATE) - TONE_HZ) <= 1.0


def test_bundled_sample_speech() -> None:
    from speech2vid.assets import sample_speech

    audio, signal = load_speech(sample_speech())
    assert audio.rate == SAMPLE_RATE and audio.channels == 1
    assert 4.0 < audio.duration < 7.0
    assert -4.0 < peak_dbfs(signal) < -2.0
    check_not_silent(signal, sample_speech())


def test_audio_resampled_and_validation() -> None:
    audio = Audio(np.zeros((4410, 2), np.float32), 44100)
    assert audio.resampled(16000).samples.shape == (1600, 2)
    with pytest.raises(ValueError):
        Audio(np.zeros(10, np.float32), 16000)


def test_missing_file(tmp_path: Path) -> None:
    expect_audio_error(tmp_path / "nope.wav", "not found")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "speech_dir.wav"
    folder.mkdir()
    expect_audio_error(folder, "directory")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    expect_audio_error(path, "cannot decode")


def _valid_wav_bytes(tmp_path: Path) -> bytes:
    sf.write(tmp_path / "ok.wav", tone(16000), 16000, subtype="PCM_16")
    return (tmp_path / "ok.wav").read_bytes()


def test_riff_header_then_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(_valid_wav_bytes(tmp_path)[:12] + np.random.default_rng(0).bytes(4000))
    expect_audio_error(path, "cannot decode")


def test_wav_cut_to_its_header(tmp_path: Path) -> None:
    path = tmp_path / "cut_header.wav"
    path.write_bytes(_valid_wav_bytes(tmp_path)[:44])
    expect_audio_error(path, "truncated", "1.00 s", "0.00 s")


def test_wav_cut_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "cut_half.wav"
    data = _valid_wav_bytes(tmp_path)
    path.write_bytes(data[: 44 + 16000])  # 0.5 s of the declared 1 s
    expect_audio_error(path, "truncated", "0.50 s")


def test_wav_with_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    expect_audio_error(path, "no audio samples")


def test_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent_movie.mp4"
    video_only(path)
    expect_audio_error(path, "has no audio track")


def test_silence_detection(tmp_path: Path) -> None:
    path = tmp_path / "quiet.wav"
    with pytest.raises(AudioError) as info:
        check_not_silent(np.zeros(16000, np.float32), path)
    message = str(info.value)
    assert "\n" not in message and "quiet.wav" in message and "is silent (peak -inf dBFS)" in message
    hum = tone(16000, amplitude=10 ** (-70 / 20))  # -70 dBFS: below the default -60
    with pytest.raises(AudioError):
        check_not_silent(hum, path)
    check_not_silent(hum, path, threshold_dbfs=-80.0)
    check_not_silent(tone(16000, amplitude=10 ** (-40 / 20)), path)
    assert peak_dbfs(tone(16000, amplitude=0.5)) == pytest.approx(-6.02, abs=0.01)


def _mpeg_with_damage(path: Path, damaged: tuple[int, ...]) -> tuple[Path, int]:
    """An MPEG program stream of 2 s of MP2 audio (a 440 Hz tone), the given packets replaced by noise as
    a damaged recording has them (GRID's clips have one); returns (path, rate)."""
    import av

    rate = 44100
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    with av.open(str(path), "w", format="mpeg") as out:
        stream = out.add_stream("mp2", rate=rate, layout="mono")
        packets = []
        for i in range(0, x.size, 1152):
            frame = av.AudioFrame.from_ndarray(x[None, i : i + 1152], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, i
            packets += stream.encode(frame)
        packets += stream.encode(None)
        for k, packet in enumerate(packets):
            if k in damaged:
                noise = av.Packet(np.random.default_rng(k).integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                noise.pts, noise.dts, noise.duration, noise.time_base = (
                    packet.pts,
                    packet.dts,
                    packet.duration,
                    packet.time_base,
                )
                noise.stream = stream
                packet = noise
            out.mux(packet)
    return path, rate


def test_a_damaged_packet_becomes_silence_and_nothing_after_it_moves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean = read_audio(_mpeg_with_damage(tmp_path / "clean.mpg", ())[0]).samples[:, 0]
    path, rate = _mpeg_with_damage(tmp_path / "damaged.mpg", (30,))
    with caplog.at_level("WARNING"):
        damaged = read_audio(path).samples[:, 0]
    assert "1 of" in caplog.text and "damaged" in caplog.text
    assert damaged.size == clean.size  # the timeline is kept: what follows plays at its own time
    differs = np.flatnonzero(np.abs(damaged - clean) > 1e-3)
    assert differs.size and differs[-1] - differs[0] < 4 * 1152  # the packet (and the decoder's recovery), no more
    assert np.abs(damaged[differs[0] : differs[0] + 1152]).max() < 1e-3  # silence where the damage was
    # Measured: the damaged span is 3449 samples (78 ms) of the 88704.


def test_a_mostly_damaged_file_is_refused(tmp_path: Path) -> None:
    path, _ = _mpeg_with_damage(tmp_path / "bad.mpg", tuple(range(10, 40, 3)))  # 10 of 77 packets
    with pytest.raises(AudioError, match="corrupt"):
        read_audio(path)
