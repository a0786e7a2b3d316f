"""Every option and config value bounded and finite (issue 23).

The cases the issue found, each through the real CLI (one line, exit 2, quickly, nothing written), then a
hypothesis fuzz over the numeric options and the numeric config values: whatever hostile number a user
types, the command ends within 30 s with a result or one line, under an address-space limit that a
runaway allocation (``--size 100000`` asked for 30 GB) would hit.
"""

from __future__ import annotations

import dataclasses
import resource
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile import cache_config, one_line_error, speech

from speech2vid.assets import sample_face
from speech2vid.config import Settings, load_settings
from speech2vid.errors import ConfigError

ADDRESS_SPACE = 3 << 30  # bytes: a generate or live run needs under 2 GiB of address space
HANG_S = 30.0


def run_bounded(args: list[str], timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:
    """The CLI under an address-space limit; a run past ``timeout`` raises (a hang fails the test)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    return subprocess.run(
        [sys.executable, "-m", "speech2vid", *args], capture_output=True, text=True, timeout=timeout, preexec_fn=limit
    )


def clean_exit(proc: subprocess.CompletedProcess[str]) -> None:
    """A result (0) or the one-line user error (2), never a traceback or a crash."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode in (0, 2), (proc.returncode, proc.stderr[-3000:])
    if proc.returncode == 2:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("speech2vid: error: ")]
        assert len(lines) == 1, proc.stderr


# -- the cases of the issue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["live", "--duration", "nan", "--sink", "null://"], "--duration"),
        (["live", "--duration", "inf", "--sink", "null://"], "--duration"),
        (["live", "--duration", "-5", "--sink", "null://"], "--duration"),
        (["bench", "--seconds", "nan"], "--seconds"),
        (["bench", "--batch", "100000"], "--batch"),
        (["bench", "--live", "--live-seconds", "inf"], "--live-seconds"),
        (["generate", "--raw-face", "--size", "8192", "--face", "f.jpg", "--audio", "a.wav", "-o", "o.mp4"], "--size"),
        (["generate", "--size", "100000", "--face", "f.jpg", "--audio", "a.wav", "-o", "o.mp4"], "--size"),
        (["generate", "--face-index", "-1", "--face", "f.jpg", "--audio", "a.wav", "-o", "o.mp4"], "--face-index"),
        (["cache", "prune", "--older-than", "-1"], "--older-than"),
        (["cache", "prune", "--older-than", "nan"], "--older-than"),
        (["live", "--lookahead-ms", "nan", "--sink", "null://"], "--lookahead-ms"),
    ],
)
def test_hostile_numbers_are_one_line(args: list[str], needle: str) -> None:
    t0 = time.monotonic()
    proc = run_bounded(args)
    one_line_error(proc, needle)
    assert time.monotonic() - t0 < HANG_S


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("encode:\n  preset: fastest\n", "encode.preset"),
        ("encode:\n  video_codec: libx265000\n", "encode.video_codec"),
        ("encode:\n  audio_codec: libx264\n", "encode.audio_codec"),
        ("generate:\n  silence_threshold_dbfs: .nan\n", "finite"),
        ("live:\n  ring_seconds: .inf\n", "finite"),
        ("engine:\n  batch: {min: 1, opt: 8, max: 100000}\n", "engine.batch"),
        ("generate:\n  output_size: 100000\n", "generate.output_size"),
        ("live:\n  late_ms: -1\n", "live.late_ms"),
    ],
)
def test_hostile_config_values_are_one_line(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    proc = run_bounded(
        [
            "--config",
            str(cfg),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(speech(tmp_path, 0.5)),
            "-o",
            str(tmp_path / "o.mp4"),
        ]
    )
    one_line_error(proc, needle)
    assert not (tmp_path / "o.mp4").exists()


def test_a_model_file_with_huge_layers_is_refused_before_it_allocates(tmp_path: Path) -> None:
    huge = yaml.safe_load(Path(str(Path(__file__).parents[1] / "configs/models/lite.yaml")).read_text())
    huge["name"] = "huge"
    huge["audio"]["channels"][2] = 2_000_000
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(huge))
    proc = run_bounded(["info", "--model", str(path)])
    one_line_error(proc, "channel width")


# -- fuzz: numeric options ----------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=24,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

hostile_numbers = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e308", "-0", "0", "1e-300", "9" * 40, "-1", "0x10", "", "1_000"]),
    st.floats(max_value=-1e-6, allow_infinity=True).map(repr),
    st.floats(min_value=1e7, allow_infinity=True).map(repr),
    st.integers(min_value=2**31).map(str),
    st.integers(max_value=-1).map(str),
)

# (command line before the option, the option): every numeric option of the runtime commands
NUMERIC_OPTIONS = [
    (["generate"], "--size"),
    (["generate"], "--face-index"),
    (["generate", "--raw-face"], "--size"),
    (["redub"], "--face-index"),
    (["live"], "--duration"),
    (["live"], "--lookahead-ms"),
    (["bench"], "--seconds"),
    (["bench"], "--batch"),
    (["bench", "--live"], "--live-seconds"),
    (["cache", "prune"], "--older-than"),
    (["cache", "prune"], "--keep"),
]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from test_hostile import _tiny_video

    folder = tmp_path_factory.mktemp("fuzz")
    return {
        "audio": speech(folder, 0.5),
        "video": _tiny_video(folder / "clip.mp4"),
        "folder": folder,
        "config": cache_config(folder),
    }


def _command(words: list[str], option: str, value: str, media: dict[str, Path]) -> list[str]:
    out = str(media["folder"] / "out.mp4")
    cmd = words[0]
    args = ["-q", "--config", str(media["config"]), *words, f"{option}={value}"]
    if cmd == "generate":
        args += ["--face", str(sample_face()), "--audio", str(media["audio"]), "-o", out]
    elif cmd == "redub":
        args += [str(media["video"]), "--audio", str(media["audio"]), "-o", out]
    elif cmd == "live":
        args += ["--source", f"file://{media['audio']}?realtime=0", "--sink", "null://", "--precision", "fp32"]
    elif cmd == "bench":
        args += (
            ["--backend", "onnxruntime:cpu:fp32", "--model", "lite"]
            if "--live" not in words
            else ["--precision", "fp32"]
        )
    return args


@pytest.mark.slow
@FUZZ
@given(which=st.sampled_from(NUMERIC_OPTIONS), value=hostile_numbers)
def test_fuzz_numeric_options_never_trace_hang_or_blow_up(
    media: dict[str, Path], which: tuple[list[str], str], value: str
) -> None:
    proc = run_bounded(_command(*which, value, media))
    clean_exit(proc)


# -- fuzz: numeric config values ----------------------------------------------------------------------------


def _numeric_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted keys of every int or float setting (the dataclasses are the one list of them)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += _numeric_keys(tp, f"{prefix}{f.name}.")
        elif tp in (int, float) or set(typing.get_args(tp)) & {int, float}:
            keys.append(prefix + f.name)
    return keys


NUMERIC_KEYS = [k for k in _numeric_keys(Settings) if not k.startswith(("train.", "eval.", "prepare.", "synth."))]
config_numbers = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0, -1, 1e308, 2**63, -(2**63), 1e-300]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.integers(min_value=-(2**64), max_value=2**64),
)


def _nested(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return typing.cast(dict[str, Any], out)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(key=st.sampled_from(_numeric_keys(Settings)), value=config_numbers)
def test_fuzz_every_numeric_setting_is_checked(key: str, value: Any) -> None:
    """In process, fast: every numeric key with hostile numbers loads or is one ConfigError line, and a value
    that loads is finite."""
    import math

    try:
        loaded = load_settings(overrides=_nested(key, value))
    except ConfigError as exc:
        # one short line that names the setting or its section (a check across keys names the section)
        assert "\n" not in str(exc) and len(str(exc)) < 600 and key.rsplit(".", 1)[0] in str(exc), str(exc)
        return
    got: Any = loaded
    for part in key.split("."):
        got = getattr(got, part)
    assert got is None or isinstance(got, str) or math.isfinite(got), (key, got)


@pytest.mark.slow
@settings(
    max_examples=16,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(key=st.sampled_from(NUMERIC_KEYS), value=config_numbers)
def test_fuzz_config_values_through_generate(media: dict[str, Path], key: str, value: Any) -> None:
    cfg = media["folder"] / "fuzz.yaml"
    base = yaml.safe_load(Path(media["config"]).read_text())
    layer = _nested(key, value)
    for section, body in layer.items():
        base[section] = {**base.get(section, {}), **body} if isinstance(body, dict) else body
    cfg.write_text(yaml.safe_dump(base))
    proc = run_bounded(
        [
            "-q",
            "--config",
            str(cfg),
            "generate",
            "--face",
            str(sample_face()),
            "--audio",
            str(media["audio"]),
            "-o",
            str(media["folder"] / "cfg.mp4"),
        ]
    )
    clean_exit(proc)
