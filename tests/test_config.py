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
    assert (
        load_settings(
            write(tmp_path, "engine:\n  batch: {min: 1, opt: 8, max: 64}\ngenerate:\n  batch: 64\n")
        ).generate.batch
        == 64
    )


def test_the_default_yaml_states_every_dataclass_default_and_nothing_else() -> None:
    """Every default is written twice, in configs/default.yaml (what users read and copy) and in the config
    dataclasses (what code without the YAML gets): this keeps the two the same, key for key."""
    import yaml

    from speech2vid.config import Settings, to_dict

    written = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "default.yaml").read_text())
    defaults = to_dict(Settings())

    def differences(a: dict, b: dict, where: str = "") -> list[str]:  # type: ignore[type-arg]
        out = []
        for key in sorted(set(a) | set(b)):
            path = f"{where}.{key}" if where else key
            if key not in a or key not in b:
                out.append(f"{path}: only in {'the dataclasses' if key not in a else 'the YAML'}")
            elif isinstance(a[key], dict) and isinstance(b[key], dict):
                out += differences(a[key], b[key], path)
            elif (list(a[key]) if isinstance(a[key], (list, tuple)) else a[key]) != (
                list(b[key]) if isinstance(b[key], (list, tuple)) else b[key]
            ):
                out.append(f"{path}: YAML {a[key]!r}, dataclass {b[key]!r}")
        return out

    assert differences(written, defaults) == []


def test_one_frame_rate_and_one_look_ahead_formula() -> None:
    """FPS is defined once (features/windows.py) and the look-ahead's milliseconds are computed, never
    written as a formula, anywhere else in the package."""
    import re

    root = Path(__file__).resolve().parents[1]
    sources = [p for p in root.rglob("*.py") if not {"tests", "build", ".git"} & set(p.relative_to(root).parts)]
    fps = [str(p.relative_to(root)) for p in sources if re.search(r"^FPS\s*=", p.read_text(), re.M)]
    assert fps == ["features/windows.py"], fps
    formula = [str(p.relative_to(root)) for p in sources if re.search(r"12\.5\s*\+\s*10", p.read_text())]
    assert formula == [], formula
