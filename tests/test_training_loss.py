"""The generator's mouth-weighted L1 (training/loss.py) and the audio encoder's lr multiplier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speech2vid.config import TrainConfig, load_model_config, load_settings
from speech2vid.errors import ConfigError
from speech2vid.faces.template import TEMPLATE_ALIGNED
from speech2vid.model.speech2vid import build_model
from speech2vid.training.datasets import TARGET_OFFSET, TARGET_SIZE
from speech2vid.training.loss import mouth_band_top, weighted_l1
from speech2vid.training.trainer import GeneratorNet, _optimizer, _param_groups, lr_at


def test_the_band_starts_at_the_nose_tip_and_holds_the_whole_template_mouth() -> None:
    top = mouth_band_top()
    rows = TEMPLATE_ALIGNED[:, 1] - TARGET_OFFSET  # template landmarks in 109x109 target rows
    assert rows[33] <= top < rows[33] + 1  # first row at/below the nose tip
    assert rows[48:68].min() >= top and rows[48:68].max() < TARGET_SIZE  # every lip point inside the band
    assert rows[36:48].max() < top and rows[17:27].max() < top  # eyes and brows outside it


@pytest.mark.parametrize("weight", [1.0, 3.0, 7.5])
def test_a_perturbation_in_the_band_counts_weight_times_one_outside_counts_once(weight: float) -> None:
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.random((2, 3, TARGET_SIZE, TARGET_SIZE), dtype=np.float32))
    top = mouth_band_top()
    delta = rng.normal(0, 0.1, (2, 3, TARGET_SIZE, TARGET_SIZE)).astype(np.float32)
    inside, outside = np.zeros_like(delta), np.zeros_like(delta)
    inside[:, :, top:] = delta[:, :, top:]
    outside[:, :, :top] = delta[:, :, :top]
    plain = lambda d: float(np.abs(d).mean())  # noqa: E731 - the independent reference: numpy L1
    got_in = float(weighted_l1(target + torch.from_numpy(inside), target, weight))
    got_out = float(weighted_l1(target + torch.from_numpy(outside), target, weight))
    got_all = float(weighted_l1(target + torch.from_numpy(delta), target, weight))
    assert got_in == pytest.approx(weight * plain(inside), rel=1e-5)
    assert got_out == pytest.approx(plain(outside), rel=1e-5)
    assert got_all == pytest.approx(weight * plain(inside) + plain(outside), rel=1e-5)


def test_audio_encoder_gets_its_own_learning_rate_group() -> None:
    model = build_model(load_model_config("lite"))
    net = GeneratorNet(model)
    cfg = TrainConfig(audio_lr_mult=4.0)
    groups = _param_groups(cfg, net)
    audio = {id(p) for p in net.audio.parameters()}
    by_mult = {g["lr_mult"]: {id(p) for p in g["params"]} for g in groups}
    assert by_mult[4.0] == audio
    assert by_mult[1.0] == {id(p) for p in net.parameters()} - audio
    opt = _optimizer(cfg, groups)
    assert [g["lr_mult"] for g in opt.param_groups] == [1.0, 4.0]


def test_the_schedule_holds_the_lr_then_follows_a_cosine_to_zero() -> None:
    cfg = TrainConfig(lr=3e-4, lr_schedule="cosine", lr_hold_epochs=3, epochs=7)
    lrs = [lr_at(cfg, step, 10) for step in range(70)]
    assert lrs[:31] == [3e-4] * 31  # the first decay step is the cosine's start, still the full lr
    tail = np.array(lrs[30:])
    expected = 3e-4 * 0.5 * (1 + np.cos(np.pi * np.arange(40) / 40))
    np.testing.assert_allclose(tail, expected, rtol=1e-12)
    assert lrs[50] == pytest.approx(1.5e-4)  # halfway through the decay
    assert lr_at(cfg, 70, 10) == 0.0
    plain = TrainConfig(lr=1e-3, lr_schedule="cosine", epochs=4)
    assert lr_at(plain, 20, 10) == pytest.approx(5e-4)
    assert lr_at(TrainConfig(lr=1e-3, lr_schedule="constant", epochs=4), 39, 10) == 1e-3


@pytest.mark.parametrize(
    "text, key",
    [("train: {mouth_weight: 0.5}\n", "mouth_weight"), ("train: {epochs: 5, lr_hold_epochs: 5}\n", "lr_hold_epochs")],
)
def test_bad_values_are_config_errors(tmp_path: Path, text: str, key: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_settings(bad)
