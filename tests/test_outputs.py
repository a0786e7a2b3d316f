"""The one output rule (issue 23), for every writer: what a user sees when an output path is an input, a
device, a FIFO, a folder, another output of the same run, or on a disk that fills up.

Each case runs the real command in a subprocess: one line on stderr, exit status 2, no traceback, and
the path given (and every input) untouched or absent.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_hostile import _tiny_video, cache_config, leftovers, one_line_error, run_cli, speech

from speech2vid.assets import sample_face


@pytest.fixture(scope="module")
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose engine cache is a folder of the test's own."""
    return cache_config(tmp_path_factory.mktemp("cache"))


def _run_limited(args: list[str], file_bytes: int, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI with RLIMIT_FSIZE: a write past ``file_bytes`` fails with EFBIG, the way a full disk
    fails with ENOSPC (Python ignores SIGXFSZ, so the error reaches the writer)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "speech2vid", *args], capture_output=True, text=True, timeout=timeout, preexec_fn=limit
    )


def _photo_copy(tmp_path: Path) -> Path:
    path = tmp_path / f"face{Path(sample_face()).suffix}"
    shutil.copy(sample_face(), path)
    return path


def _digest(path: Path) -> bytes:
    return path.read_bytes()


def _live(tmp_path: Path, audio: Path, *extra: str, config: Path | None = None) -> list[str]:
    return [
        "-q",
        "--config",
        str(config or cache_config(tmp_path)),
        "live",
        "--source",
        f"file://{audio}?realtime=0",
        "--duration",
        "1",
        "--precision",
        "fp32",
        *extra,
    ]


# -- 1. an output that is one of the run's inputs -----------------------------------------------------------


def test_live_stats_onto_the_face_photo_is_refused(tmp_path: Path) -> None:
    face = _photo_copy(tmp_path)
    before = _digest(face)
    proc = run_cli(
        *_live(tmp_path, speech(tmp_path, 1.0), "--face", str(face), "--sink", "null://", "--stats", str(face))
    )
    one_line_error(proc, "also an input")
    assert _digest(face) == before


def test_live_file_sink_onto_its_own_source_is_refused(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    from test_hostile import _video_with_audio

    _video_with_audio(clip)
    before = _digest(clip)
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        "live",
        "--source",
        f"file://{clip}?realtime=0",
        "--duration",
        "1",
        "--sink",
        f"file://{tmp_path}/./clip.mp4",
    )
    one_line_error(proc, "also an input")
    assert _digest(clip) == before


def test_redub_strip_onto_its_face_photo_is_refused(tmp_path: Path) -> None:
    face = _photo_copy(tmp_path)
    before = _digest(face)
    video = _tiny_video(tmp_path / "clip.mp4")
    proc = run_cli(
        "-q",
        "--config",
        str(cache_config(tmp_path)),
        "redub",
        str(video),
        "--audio",
        str(speech(tmp_path, 0.5)),
        "-o",
        str(tmp_path / "out.mp4"),
        "--face",
        str(face),
        "--strip",
        str(face),
    )
    one_line_error(proc, "also an input")
    assert _digest(face) == before and not (tmp_path / "out.mp4").exists()


def test_bench_json_onto_its_audio_is_refused(tmp_path: Path) -> None:
    audio = speech(tmp_path, 0.5)
    before = _digest(audio)
    proc = run_cli("bench", "--live", "--audio", str(audio), "--json", str(audio), "--live-seconds", "1")
    one_line_error(proc, "also an input")
    assert _digest(audio) == before


# -- 2. an output that exists and is not a regular file ---------------------------------------------------


def _char_device(tmp_path: Path, name: str, minor: int) -> str:
    """A private copy of /dev/null (minor 3) or /dev/full (minor 7) where this user may make one (root):
    a regression of the rule then replaces the copy, not the machine's own device. Elsewhere the real
    one, which only root could replace."""
    path = tmp_path / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except OSError:
        return f"/dev/{name}"
    return str(path)


@pytest.mark.parametrize(("name", "minor"), [("null", 3), ("full", 7)])
def test_verify_json_onto_a_device_is_refused_and_the_device_kept(tmp_path: Path, name: str, minor: int) -> None:
    device = _char_device(tmp_path, name, minor)
    proc = run_cli("verify", "--json", device)
    one_line_error(proc, "character device")
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_outputs_onto_a_fifo_or_a_folder_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "stats.json"
    os.mkfifo(fifo)
    audio = speech(tmp_path, 1.0)
    one_line_error(run_cli(*_live(tmp_path, audio, "--sink", "null://", "--stats", str(fifo))), "FIFO")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    folder = tmp_path / "out.mp4"
    folder.mkdir()
    one_line_error(
        run_cli(
            "-q",
            "--config",
            str(cache_config(tmp_path)),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(audio),
            "-o",
            str(folder),
        ),
        "is a folder",
    )
    one_line_error(run_cli(*_live(tmp_path, audio, "--sink", "null://", "--stats", str(tmp_path))), "is a folder")
    assert folder.is_dir() and not list(folder.iterdir())


def test_a_file_sink_in_proc_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(*_live(tmp_path, speech(tmp_path, 1.0), "--sink", "file:///proc/x.mp4"))
    one_line_error(proc, "/proc")


# -- 3. two outputs that name the same file ---------------------------------------------------------------


def test_the_same_file_sink_twice_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    proc = run_cli(
        *_live(
            tmp_path,
            speech(tmp_path, 1.0),
            "--sink",
            f"file://{out}",
            "--sink",
            f"file://{tmp_path}/../{tmp_path.name}/talk.mp4",
        )
    )
    one_line_error(proc, "both name")
    assert not out.exists() and not leftovers(tmp_path)


def test_stats_and_plot_may_not_share_a_file_with_another_output(tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    one_line_error(
        run_cli(*_live(tmp_path, speech(tmp_path, 1.0), "--sink", f"file://{out}", "--stats", str(out))), "both name"
    )
    one_line_error(
        run_cli("bench", "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.json")), "both name"
    )
    assert not out.exists() and not (tmp_path / "b.json").exists()


# -- 4. the disk fills up while writing -------------------------------------------------------------------


def test_generate_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, own_cache: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _run_limited(
        [
            "-q",
            "--config",
            str(own_cache),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(speech(tmp_path, 6.0)),
            "-o",
            str(out),
        ],
        file_bytes=30_000,
    )
    line = one_line_error(proc, str(out))
    assert "too large" in line or "no space" in line
    assert not out.exists() and not leftovers(tmp_path)


def test_live_on_a_full_disk_keeps_its_stats(tmp_path: Path, own_cache: Path) -> None:
    out, stats = tmp_path / "talk.mp4", tmp_path / "stats.json"
    proc = _run_limited(
        _live(
            tmp_path,
            speech(tmp_path, 8.0),
            "--duration",
            "8",
            "--sink",
            f"file://{out}",
            "--sink",
            "null://",
            "--stats",
            str(stats),
            config=own_cache,
        ),
        file_bytes=40_000,
    )
    line = one_line_error(proc, str(out))
    assert "too large" in line or "no space" in line
    assert not out.exists() and not leftovers(tmp_path)
    report = json.loads(stats.read_text())
    assert report["ended"] == "output failed" and report["frames"] > 0


def _small_tmpfs(tmp_path: Path) -> Path | None:
    mount = tmp_path / "small"
    mount.mkdir()
    ok = (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True).returncode
        == 0
    )
    return mount if ok else None


def test_generate_onto_a_really_full_tmpfs_says_no_space(tmp_path: Path) -> None:
    mount = _small_tmpfs(tmp_path)
    if mount is None:
        pytest.skip(
            "mounting a tmpfs needs root and a mount namespace that allows it; the RLIMIT_FSIZE test covers the path"
        )
    try:
        out = mount / "out.mp4"
        proc = run_cli(
            "-q",
            "--config",
            str(cache_config(tmp_path)),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(speech(tmp_path, 8.0)),
            "-o",
            str(out),
        )
        line = one_line_error(proc, "no space left")
        assert str(out) in line and not list(mount.iterdir())
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# -- 5. URIs are parsed before the engine is loaded ---------------------------------------------------------


def test_a_bad_sink_is_reported_before_the_engine_loads(tmp_path: Path) -> None:
    # No INT8 engine is built in this cache: loading the engine first would fail on that instead.
    t0 = time.monotonic()
    proc = run_cli(*_live(tmp_path, speech(tmp_path, 1.0), "--precision", "int8", "--sink", "bogus://"))
    one_line_error(proc, "unknown sink 'bogus://'")
    proc = run_cli(*_live(tmp_path, speech(tmp_path, 1.0), "--precision", "int8", "--sink", "file://x.mp4?meter=2"))
    one_line_error(proc, "unknown option 'meter=2'")
    proc = run_cli(
        "-q", "--config", str(cache_config(tmp_path)), "live", "--precision", "int8", "--source", "bogus://x"
    )
    one_line_error(proc, "unknown source 'bogus://x'")
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "engines").exists() or not any((tmp_path / "engines").iterdir())


def test_control_characters_in_a_path_are_escaped(tmp_path: Path) -> None:
    name = "a\x1b[2Jb\nc.wav"
    proc = run_cli(
        "generate", "--face", str(sample_face()), "--audio", str(tmp_path / name), "-o", str(tmp_path / "o.mp4")
    )
    line = one_line_error(proc, "not found")
    assert "\x1b" not in proc.stderr and "\\x1b[2J" in line and "\\n" in line
    config = tmp_path / "bad.yaml"
    config.write_text('generate:\n  "si\\x1b]0;owned\\x07ze": 1\n')  # YAML escapes: ESC and BEL in a key
    line = one_line_error(
        run_cli("--config", str(config), "generate", "--face", "f", "--audio", "a", "-o", "o.mp4"), "unknown key"
    )
    assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;owned\\x07" in line


def test_files_written_by_a_run_are_regular_and_complete(tmp_path: Path) -> None:
    """The positive case of the rule: a run with a file sink and stats writes both, nothing else."""
    out, stats = tmp_path / "talk.mp4", tmp_path / "stats.json"
    proc = run_cli(*_live(tmp_path, speech(tmp_path, 1.0), "--sink", f"file://{out}", "--stats", str(stats)))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 1000 and not leftovers(tmp_path)
    assert json.loads(stats.read_text())["frames"] == 25


# -- 6. SIGINT and SIGTERM end every command the same way ----------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", ["generate", "redub", "live"])
def test_a_signal_ends_every_command_with_its_status_and_one_line(tmp_path: Path, command: str, sig: int) -> None:
    from test_hostile import _wait_for

    from speech2vid.assets.synthetic_video import write_source_video

    out = tmp_path / "out.mp4"
    audio = speech(tmp_path, 60.0)  # far longer than the test waits: the run is still working
    args = {
        "generate": ["generate", "--face", str(sample_face()), "--audio", str(audio), "-o", str(out)],
        "redub": ["redub", str(write_source_video(tmp_path / "clip.mp4", n=50)), "--audio", str(audio), "-o", str(out)],
        "live": ["live", "--source", f"file://{audio}", "--precision", "fp32", "--sink", f"file://{out}"],
    }[command]
    proc = subprocess.Popen(
        [sys.executable, "-m", "speech2vid", "-q", "--config", str(cache_config(tmp_path)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: bool(leftovers(tmp_path)), proc)  # the output is being written
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    assert "Traceback" not in err and len(lines) == 1, err
    name = {signal.SIGINT: "interrupted (SIGINT)", signal.SIGTERM: "terminated (SIGTERM)"}[sig]
    assert lines[0].startswith(f"speech2vid: {name}: stopped"), err
    assert not leftovers(tmp_path)
    # generate and redub remove what they had not finished; live finalises its recording, complete
    assert out.exists() == (command == "live")


# -- 7. the cache when HOME is empty -------------------------------------------------------------------------


def test_an_empty_home_falls_back_as_xdg_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    from speech2vid.files import user_path

    monkeypatch.setenv("HOME", "")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    account_home = pwd.getpwuid(os.getuid()).pw_dir
    assert user_path("~/.cache/speech2vid/engines") == Path(account_home, ".cache/speech2vid/engines")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert user_path("~/.cache/speech2vid/engines") == Path(account_home, ".cache/speech2vid/engines")
    # The real command: the cache (an FP16 engine, built) lands under XDG_CACHE_HOME, never in /.cache at the
    # file system's root.
    env = {**os.environ, "HOME": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = run_cli("-q", "build", "--precision", "fp16", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "xdg/speech2vid/engines").is_dir()
    assert not Path("/.cache/speech2vid").exists()
