"""`speech2vid train`: a tiny run lowers validation L1; SIGTERM + resume; 2-process gloo DDP; deblur.

A tiny test-only geometry (a few channels per layer, the real layer structure) trains on a dataset in
the real on-disk format whose mouths follow the audio (tests/_toy_dataset.py), so each run takes
seconds on two CPU cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from _toy_dataset import TINY_MODEL, make_toy_dataset

from speech2vid.cli import main
from speech2vid.config import load_model_config
from speech2vid.model.speech2vid import build_model
from speech2vid.model.weights import load_weights

TRAIN = {
    "batch": 4,
    "workers": 0,
    "epochs": 3,
    "steps_per_epoch": 6,
    "log_every": 1,
    "checkpoint_every": 3,
    "lr": 0.003,
    "patience": 0,
    "seed": 0,
}
TIMEOUT = 300


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    (root / "train.yaml").write_text(yaml.safe_dump({"train": TRAIN}))
    return {
        "root": root,
        "data": make_toy_dataset(root / "data"),
        "model": root / "tiny.yaml",
        "config": root / "train.yaml",
    }


def train_args(s: dict[str, Path], out: Path, kind: str = "generator", *extra: str) -> list[str]:
    return [
        "--config",
        str(s["config"]),
        "train",
        kind,
        "--model",
        str(s["model"]),
        "--data",
        str(s["data"]),
        "-o",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


def epochs(out: Path) -> list[dict]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["event"] == "epoch"]


def final_weights(out: Path, model_yaml: Path | None = None) -> dict[str, torch.Tensor]:
    model = build_model(load_model_config(str(model_yaml or out.parent / "tiny.yaml")))
    load_weights(model, out / "last" / "weights.safetensors")
    return model.state_dict()


@pytest.fixture(scope="module")
def reference_run(setup: dict[str, Path]) -> Path:
    """One uninterrupted single-process run: 3 epochs x 6 steps."""
    out = setup["root"] / "ref"
    assert main(train_args(setup, out)) == 0
    return out


def test_tiny_run_on_the_synthetic_corpus_lowers_validation_l1(
    setup: dict[str, Path], synth_corpus: Path, tmp_path: Path
) -> None:
    """Held-out identity of the project's synthetic corpus (speech2vid.training.synth.make_corpus)."""
    cfg = tmp_path / "corpus.yaml"
    cfg.write_text(yaml.safe_dump({"train": {**TRAIN, "steps_per_epoch": 7, "log_every": 100}}))
    out = tmp_path / "corpus-run"
    args = train_args(setup, out)
    args[1], args[args.index("--data") + 1] = str(cfg), str(synth_corpus)
    assert main(args) == 0
    recs = epochs(out)
    assert [r["epoch"] for r in recs] == [0, 1, 2, 3]
    initial, final = recs[0]["val_l1"], recs[-1]["val_l1"]
    assert final < 0.8 * initial, (initial, final)  # measured: 0.284 -> 0.183 (tiny model, 21 steps)


def test_run_records_metrics_and_keeps_the_best_checkpoint(reference_run: Path) -> None:
    recs = epochs(reference_run)
    assert [r["epoch"] for r in recs] == [0, 1, 2, 3]
    assert recs[-1]["val_l1"] < 0.6 * recs[0]["val_l1"]
    steps = [json.loads(x) for x in (reference_run / "metrics.jsonl").read_text().splitlines() if '"step"' in x]
    step_recs = [r for r in steps if r["event"] == "step"]
    assert len(step_recs) == 18 and all(r["samples_per_s"] > 0 and r["loss"] > 0 for r in step_recs)
    best = min(r["val_l1"] for r in recs[1:])
    state = json.loads((reference_run / "best" / "state.json").read_text())
    assert state["best_val"] == pytest.approx(best)
    assert yaml.safe_load((reference_run / "best" / "config.yaml").read_text())["train"]["optimizer"] == "adam"
    # the best checkpoint is a plain weights file for every other command
    model = build_model(load_model_config(str(reference_run.parent / "tiny.yaml")))
    assert load_weights(model, reference_run / "best" / "weights.safetensors")["kind"] == "generator"


def test_sigterm_mid_epoch_then_resume_continues_where_it_stopped(setup: dict[str, Path], reference_run: Path) -> None:
    out = setup["root"] / "killed"
    cmd = [sys.executable, "-m", "speech2vid.cli", *train_args(setup, out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # blocks until the trainer reports a step: no sleeping
        seen.append(line)
        if "epoch 2 step 8 " in line:  # two steps into the second epoch
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=TIMEOUT) == 130, "".join(seen) + rest
    state = json.loads((out / "last" / "state.json").read_text())
    assert state["epoch"] == 1 and 8 <= state["global_step"] < 12 and state["step_in_epoch"] == state["global_step"] - 6
    assert "rerun the same command to resume" in rest

    assert main(train_args(setup, out)) == 0  # the same command resumes
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    resume = next(r for r in lines if r["event"] == "resume")
    assert resume["step"] == state["global_step"]
    after = [r["step"] for r in lines[lines.index(resume) :] if r["event"] == "step"]
    assert after[0] == state["global_step"] + 1 and after[-1] == 18
    want, got = final_weights(reference_run), final_weights(out)
    for k in want:  # the same data order and optimiser state: the same model as never interrupted
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=k)


def test_ddp_two_cpu_processes_gloo(setup: dict[str, Path], reference_run: Path) -> None:
    out = setup["root"] / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "speech2vid.cli",
        *train_args(setup, out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    recs = epochs(out)
    assert [r["epoch"] for r in recs] == [0, 1, 2, 3]  # one writer (rank 0)
    assert all(r["world_size"] == 2 for r in recs)
    assert all(r["train_samples"] == 6 * TRAIN["batch"] * 2 for r in recs[1:])  # every rank its own batches
    ddp = [r["val_l1"] for r in recs]
    single = [r["val_l1"] for r in epochs(reference_run)]
    # the same curve shape: a large drop from the untrained model, then a lower plateau
    assert ddp[-1] < 0.6 * ddp[0] and single[-1] < 0.6 * single[0]
    # same seed: the same untrained model (the reader draws identity frames per rank, hence not exact)
    assert ddp[0] == pytest.approx(single[0], rel=2e-3)
    assert abs(ddp[-1] / ddp[0] - single[-1] / single[0]) < 0.25


def test_deblur_trains_alone_on_blurred_ground_truth(
    setup: dict[str, Path], reference_run: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "deblur.yaml"
    cfg.write_text(yaml.safe_dump({"train": {**TRAIN, "epochs": 1, "steps_per_epoch": 4}}))
    out = tmp_path / "deblur"
    start = reference_run / "best" / "weights.safetensors"
    args = train_args(setup, out, "deblur", "--weights", str(start))
    args[1] = str(cfg)
    assert main(args) == 0
    recs = epochs(out)
    # the residual starts at zero: the untrained deblur returns its (blurred) input exactly
    assert recs[0]["val_l1"] == pytest.approx(recs[0]["val_l1_blurred_input"])
    assert recs[0]["val_l1_blurred_input"] > 0.005  # the artificial blur really changes the faces
    before = build_model(load_model_config(str(setup["model"])))
    load_weights(before, start)
    after = final_weights(out, setup["model"])
    for k, v in before.state_dict().items():  # the generator is kept as loaded; only the deblur learns
        assert torch.equal(after[k], v) != k.startswith("deblur.convs"), k


def test_a_fine_tune_that_never_beats_its_start_says_so(
    setup: dict[str, Path], reference_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``best/`` is the best of the run's epochs; a fine-tune whose epochs all score worse than the weights it
    started from (here a learning rate 300x too high) is told so, and a good one is not."""
    start = reference_run / "best" / "weights.safetensors"
    for lr, worse in ((1.0, True), (0.003, None)):
        cfg = tmp_path / f"lr{lr}.yaml"
        cfg.write_text(yaml.safe_dump({"train": {**TRAIN, "epochs": 1, "lr": lr}}))
        out = tmp_path / f"lr{lr}"
        args = train_args(setup, out, "generator", "--weights", str(start))
        args[1] = str(cfg)
        caplog.clear()
        with caplog.at_level("WARNING", logger="speech2vid.train"):
            assert main(args) == 0
        recs = epochs(out)
        said = "no epoch beat the validation L1 the run started from" in caplog.text
        if worse is None:  # whatever this one does, the warning must agree with the numbers
            worse = recs[1]["val_l1"] >= recs[0]["val_l1"]
        assert (recs[1]["val_l1"] >= recs[0]["val_l1"]) == worse, (lr, recs)
        assert said == worse, (lr, caplog.text)


def test_bad_inputs_are_one_line_errors(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = train_args(setup, tmp_path / "x")
    bad[bad.index("--data") + 1] = str(tmp_path / "missing")
    assert main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("speech2vid: error: ") and "not a speech2vid dataset" in err and "\n" not in err


def test_real_video_batches_join_the_steps_and_resume_exactly(setup: dict[str, Path], tmp_path: Path) -> None:
    """``--real``: a second dataset (here another toy one, standing in for `prepare`d real video) joins every
    ``real_every``-th step; a run stopped and resumed reads the same batches of both and ends with the same
    weights as one never stopped."""
    real = make_toy_dataset(tmp_path / "real", train_ids=2, val_ids=1, seed=7)
    cfg = tmp_path / "mixed.yaml"
    cfg.write_text(yaml.safe_dump({"train": {**TRAIN, "epochs": 2, "real_every": 2, "real_weight": 0.5}}))

    def args(out: Path, *extra: str) -> list[str]:
        a = train_args(setup, out, "generator", "--real", str(real), *extra)
        a[1] = str(cfg)
        return a

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(args(whole)) == 0
    steps = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    assert all(
        "real_l1" in r for r in steps if r["event"] == "step"
    )  # step 1 took a real batch: so did every log line after
    assert main(args(parts, "--stop-after-steps", "5")) == 0  # stopped after an odd step: mid-way in both sources
    assert main(args(parts)) == 0
    want, got = final_weights(whole, setup["model"]), final_weights(parts, setup["model"])
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=k)
    plain = final_weights(setup["root"] / "ref", setup["model"]) if (setup["root"] / "ref").exists() else None
    if plain is not None:  # the real batches changed what was learnt
        assert any(not torch.allclose(plain[k], want[k]) for k in want)


def test_real_goes_with_the_generator_only(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(train_args(setup, tmp_path / "d", "deblur", "--real", str(setup["data"])))
    assert code == 2 and "--real trains the generator" in capsys.readouterr().err
