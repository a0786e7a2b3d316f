"""YAML -> frozen dataclasses: defaults load, and every mistake is one line naming the key and file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from speech2vid.config import load_model_config, load_settings, model_names
from speech2vid.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "user.yaml"
    p.write_text(text)
    return p


def test_defaults_load_and_are_frozen() -> None:
    s = load_settings()
    assert s.engine.backend == "onnxruntime" and s.engine.batch.min <= s.engine.batch.opt <= s.engine.batch.max
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.engine.backend = "torch"  # type: ignore[misc]


def test_bundled_models() -> None:
    assert {"paper", "lite"} <= set(model_names())
    paper = load_model_config("paper")
    assert paper.identity_faces == 5 and paper.audio.channels == (64, 128, 256, 256, 256)
    assert paper.decoder.conv1 == (128, 256, 512) and paper.deblur.layers == 10


def test_user_file_overrides_one_key(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "engine:\n  backend: torch\n  batch: {opt: 4}\n"))
    assert s.engine.backend == "torch" and s.engine.batch.opt == 4 and s.engine.batch.max == 32


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("engine:\n  bakend: torch\n", "unknown key 'engine.bakend'"),
        ("generate:\n  batch: eight\n", "'generate.batch' must be an integer"),
        ("engine:\n  precision: fp8\n", "'engine.precision' must be one of"),
        ("engine:\n  batch: {min: 8, opt: 4}\n", "1 <= min <= opt <= max"),
        ("engine:\n  backend: torch\n  precision: int8\n", "conflicts with 'engine.backend: torch'"),
        ("engine:\n  backend: tensorrt\n", "needs 'engine.device: cuda'"),
        ("generate:\n  output_size: 255\n", "even number"),
        ("encode:\n  crf: 60\n", "'encode.crf' must be within 0..51"),
        ("generate:\n  crf: 18\n", "'generate.crf' is now 'encode.crf'"),  # encoding has its own section
        ("engine: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_bad_user_file_is_one_line_naming_key_and_file(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert needle in msg
    assert str(path) in msg
    assert "\n" not in msg


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_model_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown model 'huge'"):
        load_model_config("huge")
    bad = tmp_path / "m.yaml"
    text = (Path(__file__).parents[1] / "configs" / "models" / "lite.yaml").read_text()
    bad.write_text(text.replace("identity_faces: 5", "identity_faces: 3"))
    with pytest.raises(ConfigError, match=r"'identity_faces' must be one of 1, 5"):
        load_model_config(bad)
    assert "\n  conv4: 32\n" in text
    bad.write_text(text.replace("\n  conv4: 32\n", "\n  conv4: 32\n  conv6: 3\n"))
    with pytest.raises(ConfigError, match=r"unknown key 'decoder.conv6'"):
        load_model_config(bad)
    bad.write_text(text.replace("fc6: 256\n  embedding: 128\nidentity", "fc6: 256\nidentity"))
    with pytest.raises(ConfigError, match=r"missing key 'audio.embedding'"):
        load_model_config(bad)


def test_command_line_overrides_are_checked() -> None:
    with pytest.raises(ConfigError, match="command-line options"):
        load_settings(overrides={"engine": {"backend": "torch", "precision": "int8"}})


def test_pipeline_batch_must_fit_the_engines(tmp_path: Path) -> None:
    """A check across sections: generate/redub may not send more frames per call than the engines take."""
    with pytest.raises(ConfigError, match=r"'generate.batch: 64' is more than 'engine.batch.max: 32'"):
        load_settings(write(tmp_path, "generate:\n  batch: 64\n"))
    with pytest.raises(ConfigError, match=r"'redub.batch: 16' is more than 'engine.batch.max: 8'"):
        load_settings(write(tmp_path, "engine:\n  batch: {min: 1, opt: 4, max: 8}\nredub:\n  batch: 16\n"))
    assert load_settings(write(tmp_path, "engine:\n  batch: {min: 1, opt: 8, max: 64}\ngenerate:\n  batch: 64\n")).generate.batch == 64
