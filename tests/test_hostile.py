"""Hostile inputs and faults (issue 13): each defect a probe found, as the user meets it.

Every test runs the real command in a subprocess where what matters is what a user sees: one line on
stderr, the exit status, no traceback, and nothing left behind that looks finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech2vid.assets import sample_face, sample_speech

GEN = ["generate", "--model", "lite", "--weights", "random", "--backend", "torch"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speech2vid", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def one_line_error(proc: subprocess.CompletedProcess[str], needle: str, code: int = 2) -> str:
    """Assert the user-error contract and return the line."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("speech2vid: error: ") and needle in lines[0], lines[0]
    return lines[0]


def speech(tmp_path: Path, seconds: float, name: str = "speech.wav") -> Path:
    x, sr = sf.read(sample_speech(), dtype="float32")
    x = np.tile(x, int(np.ceil(seconds * sr / len(x))))[: int(seconds * sr)]
    path = tmp_path / name
    sf.write(path, x, sr)
    return path


def cache_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "cache.yaml"
    cfg.write_text(f"engine:\n  cache_dir: {tmp_path / 'engines'}\n")
    return cfg


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".*partial*"))


# -- 1. non-finite audio ---------------------------------------------------------------------------------


@pytest.fixture
def nan_wav(tmp_path: Path) -> Path:
    """Float WAV of speech with a few NaN and inf samples (a broken DSP export)."""
    x, sr = sf.read(sample_speech(), dtype="float32")
    x = x[:sr].copy()
    x[[100, 5000, 9000]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "nan.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    return path


def _tiny_video(path: Path) -> Path:
    from speech2vid.sinks.video_file import VideoFileSink

    with VideoFileSink(path, fps=25, size=(64, 64), preset="ultrafast") as sink:
        for _ in range(5):
            sink.write(np.full((64, 64, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize("command", ["generate", "generate --allow-silence", "redub", "live"])
def test_non_finite_audio_is_refused_in_one_line(tmp_path: Path, nan_wav: Path, command: str) -> None:
    out = tmp_path / "out.mp4"
    if command.startswith("generate"):
        args = [*GEN, "--face", str(sample_face()), "--audio", str(nan_wav), "-o", str(out), *command.split()[1:]]
    elif command == "redub":
        args = [
            "redub",
            str(_tiny_video(tmp_path / "src.mp4")),
            "--audio",
            str(nan_wav),
            "-o",
            str(out),
            "--model",
            "lite",
            "--weights",
            "random",
            "--backend",
            "torch",
        ]
    else:
        args = [
            "live",
            "--face",
            str(sample_face()),
            "--source",
            f"file://{nan_wav}?realtime=0",
            "--sink",
            f"file://{out}",
            "--model",
            "lite",
            "--weights",
            "random",
            "--backend",
            "torch",
        ]
    proc = run_cli("-q", "--config", str(cache_config(tmp_path)), *args)
    if command == "live":  # live loads the weights before it opens its source: their warning comes first
        proc.stderr = "\n".join(ln for ln in proc.stderr.splitlines() if "RANDOM, untrained weights" not in ln)
    line = one_line_error(proc, "non-finite samples")
    assert "nan.wav" in line and "the first at 0.006 s" in line and "silent" not in line
    assert not out.exists() and not leftovers(tmp_path)


# -- 5. SIGTERM and the partial files of killed runs -----------------------------------------------------


def _wait_for(condition, proc: subprocess.Popen[str], timeout: float = 180.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a file-system condition while the process runs (there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_sigterm_during_generate_removes_the_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    audio = speech(tmp_path, 60.0)  # far longer than the test waits: the run is still rendering
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "speech2vid",
            "-q",
            "--config",
            str(cache_config(tmp_path)),
            *GEN,
            "--face",
            str(sample_face()),
            "--audio",
            str(audio),
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: bool(leftovers(tmp_path)), proc)  # the sink is open: frames are being written
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1] == "speech2vid: terminated (SIGTERM): stopped, unfinished output removed", err
    assert not out.exists() and not leftovers(tmp_path)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partials_of_killed_runs_are_removed_by_the_next_run(tmp_path: Path) -> None:
    from speech2vid.files import host_tag

    dead, here = _dead_pid(), host_tag()
    stale = [tmp_path / f".out.mp4.partial-{here}-{dead}.mp4", tmp_path / f".clip.mp4.partial-{here}-{dead}"]
    alive = tmp_path / f".other.mp4.partial-{here}-{os.getpid()}.mp4"  # a writer that still runs: not ours to delete
    unrelated = tmp_path / ".notes.partial.txt"
    # Another machine's writer on a shared folder: its process id means nothing here (issue 23).
    # A name without a host (as written before issue 23) cannot be told apart from one: kept too.
    elsewhere = [tmp_path / f".shared.mp4.partial-{here}x-{dead}.mp4", tmp_path / f".shared.partial-{dead}.mp4"]
    for p in (*stale, alive, unrelated, *elsewhere):
        p.write_bytes(b"half a video")
    out = tmp_path / "new.mp4"
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        *GEN,
        "--face",
        str(sample_face()),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    assert not any(p.exists() for p in stale)
    assert alive.exists() and unrelated.exists() and all(p.exists() for p in elsewhere)


# -- 8. an output that is one of the inputs ----------------------------------------------------------------


def _video_with_audio(path: Path) -> Path:
    from speech2vid.audio.io import read_audio
    from speech2vid.sinks.video_file import VideoFileSink

    with VideoFileSink(path, fps=25, size=(64, 64), preset="ultrafast", audio=read_audio(sample_speech())) as sink:
        for _ in range(25):
            sink.write(np.full((64, 64, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize("alias", ["same path", "relative path", "hard link", "symlink"])
def test_generate_refuses_to_overwrite_its_audio_input(tmp_path: Path, alias: str) -> None:
    base = _video_with_audio(tmp_path / "base.mp4")
    before = base.read_bytes()
    out = {
        "same path": base,
        "relative path": Path(os.path.relpath(base)),
        "hard link": tmp_path / "hard.mp4",
        "symlink": tmp_path / "sym.mp4",
    }[alias]
    if alias == "hard link":
        os.link(base, out)
    elif alias == "symlink":
        out.symlink_to(base)
    proc = run_cli(
        "--config",
        str(cache_config(tmp_path)),
        *GEN,
        "--face",
        str(sample_face()),
        "--audio",
        str(base),
        "-o",
        str(out),
    )
    one_line_error(proc, "is also an input")
    assert base.read_bytes() == before and not leftovers(tmp_path)


def test_generate_refuses_to_overwrite_its_face_photo(tmp_path: Path) -> None:
    face = tmp_path / "face.mp4"  # an odd name, but a user can make it so
    face.write_bytes(Path(sample_face()).read_bytes())
    proc = run_cli(
        "--config",
        str(cache_config(tmp_path)),
        *GEN,
        "--face",
        str(face),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(face),
    )
    one_line_error(proc, "is also an input")
    assert face.read_bytes() == Path(sample_face()).read_bytes()


def test_redub_refuses_to_overwrite_its_new_audio(tmp_path: Path) -> None:
    base = _video_with_audio(tmp_path / "speech.mp4")
    before = base.read_bytes()
    proc = run_cli(
        "--config",
        str(cache_config(tmp_path)),
        "redub",
        str(_tiny_video(tmp_path / "src.mp4")),
        "--audio",
        str(base),
        "-o",
        str(base),
        "--model",
        "lite",
        "--weights",
        "random",
    )
    one_line_error(proc, "is also an input")
    assert base.read_bytes() == before


# -- 3. YAML that eats memory --------------------------------------------------------------------------


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


def alias_bomb(levels: int = 6, width: int = 9) -> str:
    """Nested aliases: a few hundred bytes that expand to width**levels values, inside a known key."""
    lines = ["engine:", '  backend: &l0 ["lol"' + ', "lol"' * (width - 1) + "]"]
    for i in range(1, levels):
        lines.append(f"  precision: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"  device: [*l{levels - 1}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("alias bomb", "aliases"),
        ("huge file", "limited to"),
        ("long value", "engine.backend"),
        ("python tag", "not valid YAML"),
        ("negative threads", "intra_op_threads"),
    ],
)
def test_hostile_config_is_one_short_line(tmp_path: Path, case: str, needle: str) -> None:
    text = {
        "alias bomb": alias_bomb(),
        "huge file": "".join(f"k{i}: {i}\n" for i in range(40_000)),  # ~400 KB of keys
        "long value": "engine:\n  backend: [" + ", ".join(["torch"] * 30_000) + "]\n",
        "python tag": "engine: !!python/object/apply:os.system ['echo owned']\n",
        "negative threads": "engine:\n  onnxruntime:\n    intra_op_threads: -5\n",
    }[case]
    out = tmp_path / "out.mp4"
    proc = run_cli(
        "--config",
        str(_config(tmp_path, text)),
        *GEN,
        "--face",
        str(sample_face()),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(out),
        timeout=60,
    )
    line = one_line_error(proc, needle)
    assert len(line) < 600, f"{len(line)} characters"
    assert not out.exists()


# -- 6 and 9. weights that are broken, or not weights at all ---------------------------------------------


def _weights(tmp_path: Path, name: str, change) -> Path:  # type: ignore[no-untyped-def]
    """The bundled lite weights with ``change(tensors)`` applied, saved as another safetensors file."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from speech2vid.model.weights import bundled_weights

    src = bundled_weights("lite")
    assert src is not None
    tensors = load_file(str(src))
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    change(tensors)
    path = tmp_path / name
    save_file(tensors, str(path), metadata=meta)
    return path


def _first_float(tensors):  # type: ignore[no-untyped-def]
    return next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 10)


def _nan(tensors) -> None:  # type: ignore[no-untyped-def]
    k = _first_float(tensors)
    tensors[k] = tensors[k].clone()
    tensors[k].view(-1)[:3] = float("nan")


def _int8(tensors) -> None:  # type: ignore[no-untyped-def]
    import torch

    k = _first_float(tensors)
    tensors[k] = (tensors[k] * 100).to(torch.int8)


def _overflow(tensors) -> None:  # type: ignore[no-untyped-def]
    import torch

    # Finite in the file, but every activation overflows: the engine's output is inf/NaN (or flat).
    for k, v in tensors.items():
        if v.is_floating_point():
            tensors[k] = torch.full_like(v, 6e4)


@pytest.mark.parametrize(
    ("case", "needle"),
    [("nan", "non-finite values"), ("int8", "is int8, expected floating point"), ("overflow", "on a probe input")],
)
def test_broken_weights_are_refused_not_rendered_black(tmp_path: Path, case: str, needle: str) -> None:
    weights = _weights(tmp_path, f"{case}.safetensors", {"nan": _nan, "int8": _int8, "overflow": _overflow}[case])
    out = tmp_path / "out.mp4"
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        "generate",
        "--model",
        "lite",
        "--weights",
        str(weights),
        "--backend",
        "torch",
        "--face",
        str(sample_face()),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(out),
    )
    one_line_error(proc, needle)
    assert not out.exists() and not leftovers(tmp_path)


def test_pack_weights_on_nan_weights_names_the_tensor(tmp_path: Path) -> None:
    weights = _weights(tmp_path, "nan.safetensors", _nan)
    proc = run_cli("pack-weights", str(weights), "-o", str(tmp_path / "packed.safetensors"), "--model", "lite")
    line = one_line_error(proc, "non-finite values")
    assert "by up to" not in line
    assert not (tmp_path / "packed.safetensors").exists()


@pytest.mark.parametrize(
    ("case", "needle"), [("torch.save", "pickle"), ("pickle", "a Python pickle"), ("directory", "safetensors file")]
)
def test_weights_that_are_not_safetensors_say_what_they_are(tmp_path: Path, case: str, needle: str) -> None:
    import pickle

    import torch

    path = tmp_path / "weights.pt"
    if case == "torch.save":
        torch.save({"w": torch.zeros(3)}, path)
    elif case == "pickle":
        path.write_bytes(pickle.dumps({"w": [0.0] * 10}, protocol=4))
    else:
        path = tmp_path / "weights_dir"
        path.mkdir()
    proc = run_cli(
        "--config",
        str(cache_config(tmp_path)),
        "generate",
        "--model",
        "lite",
        "--weights",
        str(path),
        "--backend",
        "torch",
        "--face",
        str(sample_face()),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(tmp_path / "out.mp4"),
    )
    line = one_line_error(proc, needle)
    assert "header too large" not in line and "not found" not in line


def test_decompression_bomb_photo_is_one_line(tmp_path: Path) -> None:
    from PIL import Image

    side = 9500  # 90 M pixels: past Pillow's warning limit (89 M), below its error limit
    photo = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(photo)  # 1 bit per pixel: a small file and a small test
    proc = run_cli(
        "--config",
        str(cache_config(tmp_path)),
        *GEN,
        "--face",
        str(photo),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(tmp_path / "out.mp4"),
    )
    one_line_error(proc, "too large to decode safely")


# -- 10. nothing written outside the given paths: ONNX Runtime's telemetry store ---------------------------


def test_no_telemetry_is_recorded(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")}
    env["HOME"] = str(home)
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        "generate",
        "--model",
        "lite",
        "--weights",
        "random",
        "--backend",
        "onnxruntime",
        "--face",
        str(sample_face()),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(tmp_path / "out.mp4"),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []
    assert not list(tmp_path.glob(":memory:*")) and not list(Path.cwd().glob(":memory:*"))
