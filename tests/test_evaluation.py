"""`speech2vid eval`: metrics against independent references; the helper networks see lip sync where it
exists (ground truth) and not where it does not (the still-image baseline); the table and JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _toy_dataset import TINY_MODEL, make_toy_dataset
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from speech2vid.cli import main
from speech2vid.config import EvalConfig
from speech2vid.training.evaluation.helpers import helpers
from speech2vid.training.evaluation.metrics import lse, offset_distances, pearson, psnr, ssim

EVAL = {"sync_steps": 120, "reader_steps": 100, "batch": 24}


def test_psnr_and_ssim_match_scikit_image() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 109, 109, generator=gen)
    b = (a + 0.1 * torch.randn(3, 3, 109, 109, generator=gen)).clamp(0, 1)
    b[1] = torch.nn.functional.avg_pool2d(a[1:2], 5, stride=1, padding=2)[0]  # structure change, not noise
    for i in range(3):
        x, y = a[i].permute(1, 2, 0).double().numpy(), b[i].permute(1, 2, 0).double().numpy()
        want_ssim = structural_similarity(
            x, y, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert float(ssim(a, b)[i]) == pytest.approx(want_ssim, abs=1e-5)
        assert float(psnr(a, b)[i]) == pytest.approx(peak_signal_noise_ratio(x, y, data_range=1.0), abs=1e-3)
    assert torch.allclose(ssim(a, a), torch.ones(3))


def test_sync_scores_find_the_true_offset() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(40, 8))
    video = np.roll(audio, 2, axis=0) + 0.1 * rng.normal(size=(40, 8))  # the video lags by two steps
    dist, conf, best = lse(offset_distances(video, audio, 3))
    assert best - 3 == -2 and conf > 1.0 and dist < 0.5
    _, conf_still, _ = lse(offset_distances(np.repeat(video[:1], 40, axis=0), audio, 3))
    assert conf_still < 0.3 * conf  # a still face is as far from every offset
    assert (
        pearson(np.arange(5.0), np.arange(5.0) * 2) == pytest.approx(1.0) and pearson(np.ones(5), np.arange(5.0)) == 0.0
    )


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("eval") / "data")


def test_eval_table_and_json_with_baselines(
    toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model_yaml = tmp_path / "tiny.yaml"
    model_yaml.write_text(yaml.safe_dump(TINY_MODEL))
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"eval": EVAL}))
    from speech2vid.config import load_model_config
    from speech2vid.model.speech2vid import build_model
    from speech2vid.model.weights import random_weights, save_weights

    weights = tmp_path / "w.safetensors"
    save_weights(random_weights(build_model(load_model_config(str(model_yaml)))), weights)
    out = tmp_path / "eval.json"
    args = [
        "--config",
        str(cfg),
        "eval",
        "--data",
        str(toy),
        "--model",
        str(model_yaml),
        "--weights",
        str(weights),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
        str(out),
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "still image" in table and "audio zeroed" in table and "LSE-D" in table
    result = json.loads(out.read_text())
    by = {m["method"]: m for m in result["methods"]}
    assert result["samples"] == 80 and result["offsets_frames"] == [-15, -10, -5, 0, 5, 10, 15]
    gt, still = by["ground truth"], by["still image"]
    # the helper networks, trained on the train identities, see lip sync on the held-out ones
    assert gt["mouth_agreement"] > 0.9 and gt["mouth_agreement"] > still["mouth_agreement"] + 0.5
    assert gt["lse_c"] > still["lse_c"] and gt["lse_d"] < still["lse_d"]
    assert math.isinf(gt["psnr"]) and gt["ssim"] == pytest.approx(1.0)
    # an untrained model has learned no lip sync: it does not beat the baselines on mouth agreement
    assert result["beats_baselines"]["mouth_agreement"] is False
    # the random model's output still depends on its MFCC input: the audio effect is measured, not 0
    assert "mean |model - audio zeroed|" in table
    assert 0 < result["audio_effect"]["mean_abs"] < 1 and 0 <= result["audio_effect"]["mouth_band_mean_abs"] < 1
    # the trained helpers are cached: asking again trains nothing
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    import speech2vid.training.evaluation.helpers as h

    def no_training(*a: object, **k: object) -> None:
        raise AssertionError("trained again instead of using the cache")

    monkeypatch.setattr(h, "train_reader", no_training)
    monkeypatch.setattr(h, "train_sync", no_training)
    from speech2vid.config import load_settings

    reader, sync = helpers(toy, load_settings(cfg).eval, cache_dir=tmp_path / "cache")
    assert reader is not None and sync is not None


def test_helpers_refuse_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    from speech2vid.training.datasets import DatasetError

    with pytest.raises(DatasetError):
        helpers(tmp_path, EvalConfig(), cache_dir=tmp_path / "c")
