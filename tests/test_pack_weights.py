"""pack-weights (FP32 -> the FP16 file that ships) and the bundled default weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from speech2vid.cli import main
from speech2vid.config import load_model_config
from speech2vid.errors import WeightsError
from speech2vid.model.pack import MAX_FRAME_DIFF, check_inputs
from speech2vid.model.weights import bundled_weights, load_model, save_weights


@pytest.fixture(scope="module")
def pixels_model():  # type: ignore[no-untyped-def]
    """A drawing-head model (paper): FP16 packing is for them; the warp head ships FP32 (its motion
    field moves by more than half a grey level when rounded, measured 0.15)."""
    return load_model(load_model_config("paper"), "random").model


@pytest.fixture()
def run_weights(tmp_path: Path, pixels_model) -> Path:  # type: ignore[no-untyped-def]
    """FP32 weights inside a training-run-like folder with its state.json."""
    run = tmp_path / "run" / "last"
    run.mkdir(parents=True)
    path = save_weights(pixels_model, run / "weights.safetensors")
    state = {
        "kind": "generator",
        "global_step": 123,
        "epoch": 4,
        "config": {"data": "/somewhere/corpus", "train": {"lr": 3e-4, "mouth_weight": 5.0}},
    }
    (run / "state.json").write_text(json.dumps(state))
    return path


def test_packed_weights_are_half_the_size_fp16_and_render_the_same(
    tmp_path: Path, run_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lite.safetensors"
    assert main(["pack-weights", str(run_weights), "-o", str(out), "--model", "paper", "--meta", "recipe=x.yaml"]) == 0
    assert "max abs diff" in capsys.readouterr().out
    assert 0.45 < out.stat().st_size / run_weights.stat().st_size < 0.55
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    assert (meta["trained_steps"], meta["trained_epochs"], meta["trained_data"]) == ("123", "4", "corpus")
    assert json.loads(meta["train_config"])["mouth_weight"] == 5.0 and meta["recipe"] == "x.yaml"
    cfg = load_model_config("paper")
    full, half = load_model(cfg, run_weights).model, load_model(cfg, out).model
    mfcc, faces = check_inputs(full, n=4, seed=7)  # other inputs than the packer's own check
    with torch.no_grad():
        diff = float((full(mfcc, faces) - half(mfcc, faces)).abs().max())
    assert 0 < diff <= MAX_FRAME_DIFF


def test_pack_refuses_its_own_input_and_bad_meta(run_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pack-weights", str(run_weights), "-o", str(run_weights), "--model", "paper"]) == 2
    assert "is also an input" in capsys.readouterr().err  # the one output rule (speech2vid/outputs.py)
    assert (
        main(
            [
                "pack-weights",
                str(run_weights),
                "-o",
                str(run_weights.parent / "x.safetensors"),
                "--model",
                "paper",
                "--meta",
                "novalue",
            ]
        )
        == 2
    )
    assert "KEY=VALUE" in capsys.readouterr().err
    assert not (run_weights.parent / "x.safetensors").exists()


def test_a_model_without_bundled_weights_says_so_and_how_to_get_some() -> None:
    cfg = load_model_config("paper")
    assert bundled_weights("paper") is None
    with pytest.raises(
        WeightsError, match="no trained weights for model 'paper' are bundled .*bundled: lite.*--weights"
    ):
        load_model(cfg, None)


def test_lite_loads_its_bundled_weights_by_default() -> None:
    path = bundled_weights("lite")
    assert path is not None and path.stat().st_size < 30e6  # FP32: FP16 rounding moves the warp head too much
    loaded = load_model(load_model_config("lite"), None)
    assert not loaded.is_random and Path(loaded.source) == path
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["model"] == "lite" and meta["trained_kind"] in ("generator", "deblur")


def test_the_warp_head_is_refused_as_fp16_and_packed_as_fp32(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled lite weights (warp head): FP16 rounding moves their frames past the limit, so the packer
    refuses and names --fp32; --fp32 writes every tensor unchanged, with the provenance."""
    src = bundled_weights("lite")
    assert src is not None
    assert main(["pack-weights", str(src), "-o", str(tmp_path / "half.safetensors"), "--model", "lite"]) == 2
    err = capsys.readouterr().err
    assert "--fp32" in err and "\n" not in err.strip() and not (tmp_path / "half.safetensors").exists()
    out = tmp_path / "full.safetensors"
    assert main(["pack-weights", str(src), "-o", str(out), "--model", "lite", "--fp32", "--meta", "note=x"]) == 0
    assert "FP32 kept" in capsys.readouterr().out
    with safe_open(str(src), "pt") as a, safe_open(str(out), "pt") as b:
        assert set(a.keys()) == set(b.keys())
        for k in a.keys():
            assert torch.equal(a.get_tensor(k), b.get_tensor(k)), k
        assert b.metadata()["note"] == "x"
