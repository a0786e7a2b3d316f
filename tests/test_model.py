"""The PyTorch model: geometry and cost against MODEL.md, the batch axis, identity caching, weight files."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from speech2vid.config import load_model_config
from speech2vid.errors import WeightsError
from speech2vid.features.windows import N_CEPS, WINDOW_COLS
from speech2vid.model.cost import model_cost, per_frame_macs
from speech2vid.model.io_spec import FACE_SIZE, OUTPUT_SIZE, graph_specs
from speech2vid.model.speech2vid import build_model
from speech2vid.model.weights import load_model, load_weights, random_weights, save_weights

# MODEL.md "Cost per generated frame": module -> (params, MACs for one frame, batch 1).
PAPER_COST = {
    "audio": (6.9e6, 0.31e9),
    "identity": (16.2e6, 0.51e9),
    "decoder": (5.0e6, 3.27e9),
    "deblur": (0.3e6, 3.54e9),
}
PAPER_PER_FRAME_MACS = 7.1e9
REL = 0.02  # MODEL.md rounds to 2-3 significant digits


def inputs(n: int, faces: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mfcc = torch.randn(n, 1, N_CEPS, WINDOW_COLS, generator=gen) * 10.0
    face = torch.rand(n, 3 * faces, FACE_SIZE, FACE_SIZE, generator=gen) * 255.0
    return mfcc, face


@pytest.fixture(scope="module")
def lite():  # type: ignore[no-untyped-def]
    return load_model(load_model_config("lite"), "random").model


def test_paper_cost_matches_model_md() -> None:
    model = build_model(load_model_config("paper"))  # untrained: the counts do not depend on the values
    costs = {c.name: c for c in model_cost(model)}
    for name, (params, macs) in PAPER_COST.items():
        assert costs[name].params == pytest.approx(params, rel=REL), name
        assert costs[name].macs == pytest.approx(macs, rel=REL), name
    assert per_frame_macs(model) == pytest.approx(PAPER_PER_FRAME_MACS, rel=REL)


def test_lite_fits_the_edge_budget(lite) -> None:  # type: ignore[no-untyped-def]
    assert per_frame_macs(lite) <= 1.5e9


def test_output_shape_and_range(lite) -> None:  # type: ignore[no-untyped-def]
    mfcc, faces = inputs(2)
    with torch.inference_mode():
        out = lite(mfcc, faces)
    assert out.shape == (2, 3, OUTPUT_SIZE, OUTPUT_SIZE) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_batch_axis_is_per_sample(lite) -> None:  # type: ignore[no-untyped-def]
    mfcc, faces = inputs(3)
    with torch.inference_mode():
        batched = lite(mfcc, faces)
        single = torch.cat([lite(mfcc[i : i + 1], faces[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


def test_cached_identity_equals_full_forward(lite) -> None:  # type: ignore[no-untyped-def]
    mfcc, faces = inputs(4)
    face = faces[:1]
    with torch.inference_mode():
        full = lite(mfcc, face.expand(4, -1, -1, -1))
        ident = lite.identity_graph()(face)  # batch 1, computed once
        cached, motion = lite.frame_graph()(mfcc, *ident)  # broadcast over the 4 windows inside the graph
        tiled, tiled_motion = lite.frame_graph()(mfcc, *(t.expand(4, *t.shape[1:]) for t in ident))
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)
    torch.testing.assert_close(cached, tiled, rtol=0, atol=0)
    torch.testing.assert_close(motion, tiled_motion, rtol=0, atol=0)  # the warp head's motion, beside the frame


def test_one_face_config() -> None:
    cfg = dataclasses.replace(load_model_config("lite"), identity_faces=1)
    assert graph_specs(cfg)["identity"].inputs[0].shape == (-1, 3, FACE_SIZE, FACE_SIZE)
    model = random_weights(build_model(cfg)).eval()
    mfcc, faces = inputs(2, faces=1)
    with torch.inference_mode():
        out = model(mfcc, faces)
    assert out.shape == (2, 3, OUTPUT_SIZE, OUTPUT_SIZE)


def test_weights_round_trip_fp32_exact_fp16_close(lite, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = lite.cfg
    mfcc, faces = inputs(1)
    with torch.inference_mode():
        want = lite(mfcc, faces)
    for half, atol in ((False, 0.0), (True, 1e-2)):
        path = save_weights(lite, tmp_path / f"lite-{half}.safetensors", half=half)
        fresh = build_model(cfg).eval()
        meta = load_weights(fresh, path)
        assert meta["model"] == "lite"
        for name, tensor in lite.state_dict().items():
            got = fresh.state_dict()[name]
            assert got.dtype == tensor.dtype, name  # fp16 files are upcast on load
            if half and tensor.is_floating_point():
                torch.testing.assert_close(got, tensor, rtol=1e-3, atol=1e-4)
            else:
                assert torch.equal(got, tensor), name
        with torch.inference_mode():
            torch.testing.assert_close(fresh(mfcc, faces), want, rtol=0, atol=atol)
    assert not list(tmp_path.glob("*.partial"))


def test_paper_weights_refused_by_lite_naming_the_tensor(lite, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = save_weights(build_model(load_model_config("paper")), tmp_path / "paper.safetensors", half=True)
    with pytest.raises(WeightsError, match=r"'audio\.conv1\.conv\.weight' has shape") as info:
        load_weights(build_model(lite.cfg), path)
    assert "\n" not in str(info.value) and "paper" in str(info.value)


def test_corrupt_and_missing_weights_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(os.urandom(4096))
    model = build_model(load_model_config("lite"))
    for path in (bad, tmp_path / "missing.safetensors"):
        with pytest.raises(WeightsError) as info:
            load_weights(model, path)
        assert "\n" not in str(info.value)
    # Bytes cut off mid-file are corrupt too (an interrupted download).
    good = save_weights(model, tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError):
        load_weights(model, cut)
