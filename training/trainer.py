"""The training loop of ``speech2vid train generator|deblur`` (one process, or one per device under torchrun).

generator: the audio encoder, identity encoder and decoder learn an L1 loss between their 109x109
output and the ground-truth face (paper eq. 1); the deblur CNN is left an exact identity (zero
residual) unless the starting weights bring a trained one.
deblur: the deblurring CNN alone learns to restore ground-truth faces blurred by a random Gaussian
(residual learning: its output is added to its input); the generator's weights are kept as loaded.

Checkpoints (training/checkpoint.py) are written every ``checkpoint_every`` steps, at each epoch end,
and when SIGTERM/SIGINT arrives (the step in progress finishes first); rerunning the same command
resumes from ``<out>/last`` at the same epoch and step, reading the data in the same order.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from speech2vid.config import ModelConfig, TrainConfig, to_dict
from speech2vid.errors import UserError
from speech2vid.model.speech2vid import Speech2Vid, build_model, encode_identity
from speech2vid.model.weights import load_weights
from speech2vid.training import KINDS
from speech2vid.training import distributed as D
from speech2vid.training.checkpoint import (
    BEST,
    LAST,
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from speech2vid.training.data import BatchStream, batches, blur_like_generator, loader, split_dataset
from speech2vid.training.datasets.index import open_dataset
from speech2vid.training.loss import motion_loss, weighted_l1

log = logging.getLogger("speech2vid.train")
Kind = Literal["generator", "deblur"]


class GeneratorNet(nn.Module):
    """The trainable generator: MFCC window + identity faces -> 109x109 face (no deblur)."""

    def __init__(self, model: Speech2Vid):
        super().__init__()
        self.audio, self.identity, self.decoder = model.audio, model.identity, model.decoder
        self.warp = model.cfg.decoder.head == "warp"

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        frame: torch.Tensor = self.decoder(self.audio(mfcc), *encode_identity(self.identity, self.warp, faces))
        return frame


def zero_deblur(model: Speech2Vid) -> None:
    """Make the deblur CNN an exact identity: every weight 0, so its residual is 0."""
    with torch.no_grad():
        for p in model.deblur.parameters():
            p.zero_()


def init_deblur(model: Speech2Vid, seed: int) -> None:
    """Fresh deblur weights, last conv zero: training starts from the identity and gradients flow."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # nn.ModuleList is not generic: its items are typed nn.Module (attributes Tensor | Module), and
        # Deblur fills it with nn.Conv2d only
        for conv in model.deblur.convs:
            conv.reset_parameters()  # type: ignore[operator]
    with torch.no_grad():
        last = model.deblur.convs[-1]
        last.weight.zero_()  # type: ignore[operator]
        last.bias.zero_()  # type: ignore[operator]


@dataclass
class TrainResult:
    out_dir: Path
    kind: str
    epochs_done: int
    global_step: int
    best_val: float
    history: list[dict[str, Any]]
    interrupted: bool  # stopped by a signal or --stop-after-steps before the run's end
    stopped_early: bool  # validation stopped improving (patience)


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class MetricsLog:
    """metrics.jsonl (one JSON object per line), and TensorBoard scalars when it is installed."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.tb: Any = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            step = int(record.get("step", 0))
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{record.get('event', 'train')}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of a step: constant, or held for lr_hold_epochs then cosine to 0 at the run's end."""
    hold, total = cfg.lr_hold_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch
    if cfg.lr_schedule == "constant" or step < hold or total <= hold:
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step - hold, total - hold) / (total - hold)))


def _param_groups(cfg: TrainConfig, net: nn.Module) -> list[dict[str, Any]]:
    """One group, or two for the generator: the audio encoder's with its own lr multiplier."""
    audio = getattr(net, "audio", None)
    audio_ids = {id(p) for p in audio.parameters()} if isinstance(net, GeneratorNet) and audio is not None else set()
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in audio_ids], "lr_mult": 1.0}]
    if audio_ids:
        groups.append({"params": [p for p in params if id(p) in audio_ids], "lr_mult": cfg.audio_lr_mult})
    return [g for g in groups if g["params"]]


def _optimizer(cfg: TrainConfig, params: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def run_config(kind: str, data: str, model_cfg: ModelConfig, cfg: TrainConfig) -> dict[str, Any]:
    return {"kind": kind, "data": str(data), "model": to_dict(model_cfg), "train": to_dict(cfg)}


def validate(kind: str, model: Speech2Vid, data: str, d: D.Dist, cfg: TrainConfig) -> dict[str, float]:
    """Mean L1 over the val split (all ranks together); deblur also reports the blurred input's L1."""
    ds = split_dataset(data, "val", d, identity_faces=model.cfg.identity_faces, shuffle=False, seed=cfg.seed)
    reads_all = ds.world_size == 1 and d.world > 1
    limit = cfg.val_samples if cfg.val_samples is None or reads_all else math.ceil(cfg.val_samples / d.world)
    gen = torch.Generator().manual_seed(cfg.seed + 12345)  # the same blur for every validation
    sums = [0.0, 0.0, 0.0]  # L1 sum, blurred-input L1 sum, samples
    was = model.training
    model.eval()
    if not reads_all or d.is_main:
        with torch.no_grad():
            for b in batches(loader(ds, cfg.batch, cfg.workers), d.device):
                if limit is not None and sums[2] >= limit:
                    break
                n = b.target.shape[0] if limit is None else min(b.target.shape[0], int(limit - sums[2]))
                target = b.target[:n]
                if kind == "generator":
                    out = model.generate(b.mfcc[:n], model.encode_identity(b.identity[:n]))
                    blurred = out
                else:
                    blurred = blur_like_generator(target, *cfg.blur_sigma, gen)
                    out = model.deblur(blurred)
                sums[0] += float((out - target).abs().mean(dim=(1, 2, 3)).sum())
                sums[1] += float((blurred - target).abs().mean(dim=(1, 2, 3)).sum())
                sums[2] += n
    model.train(was)
    total = D.all_sum(d, sums)
    if total[2] == 0:
        raise UserError(f"the val split of {data} yielded no samples")
    result = {"val_l1": total[0] / total[2], "val_samples": total[2]}
    if kind == "deblur":
        result["val_l1_blurred_input"] = total[1] / total[2]
    return result


def train(
    kind: str,
    data: str,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    weights: str | None = None,
    fresh: bool = False,
    stop_after_steps: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
    real: str | None = None,
) -> TrainResult:
    """Train ``kind`` on ``data``; with ``real`` (generator only), batches of that dataset of real talking
    video join every ``train.real_every``-th step (one forward pass over both: DDP-safe), the image loss
    only (real video has no motion-field truth)."""
    if kind not in KINDS:
        raise UserError(f"unknown training target '{kind}': choose generator or deblur")
    if real is not None and kind != "generator":
        raise UserError("--real trains the generator: it goes with 'train generator'")
    out_dir = Path(out_dir)
    d = D.setup(device)
    try:
        return _train(
            kind,
            data,
            model_cfg,
            cfg,
            out_dir,
            d,
            weights,
            fresh,
            stop_after_steps,
            sys.stderr.isatty() if progress is None else progress,
            real,
        )
    finally:
        D.cleanup(d)


def _check_lookahead(data: str, model_cfg: ModelConfig) -> None:
    index = open_dataset(data)
    if index.lookahead_columns != model_cfg.lookahead_columns:
        raise UserError(
            f"{data} has MFCC windows with {index.lookahead_columns} look-ahead columns, the {model_cfg.name} "
            f"model reads {model_cfg.lookahead_columns}: make the corpus for this model "
            f"(speech2vid synth --registered --model {model_cfg.name}, or prepare --model "
            f"{model_cfg.name}) or set lookahead_columns in its YAML"
        )


def _train(
    kind: str,
    data: str,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    out_dir: Path,
    d: D.Dist,
    weights: str | None,
    fresh: bool,
    stop_after_steps: int | None,
    progress: bool,
    real: str | None = None,
) -> TrainResult:
    config = run_config(kind, data, model_cfg, cfg)
    if real is not None:
        config["real"] = real
    _check_lookahead(data, model_cfg)
    if real is not None:
        _check_lookahead(real, model_cfg)
    if kind == "deblur" and model_cfg.deblur.layers == 0:
        raise UserError(
            f"the {model_cfg.name} model has no deblur CNN (deblur.layers: 0, the warp head): train the generator only"
        )
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    if weights is not None:
        load_weights(model, weights)
    if kind == "generator" and weights is None:
        zero_deblur(model)
    if kind == "deblur":
        init_deblur(model, cfg.seed)
        if weights is None and d.is_main:
            log.warning(
                "no --weights: the deblur is trained alone and saved beside an untrained generator; "
                "pass the trained generator's weights to get one usable file"
            )
    model.to(d.device).train()
    net: nn.Module = GeneratorNet(model) if kind == "generator" else model.deblur
    optimizer = _optimizer(cfg, _param_groups(cfg, net))

    state: dict[str, Any] = {
        "kind": kind,
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "best_val": None,
        "bad_epochs": 0,
        "history": [],
        "finished": False,
    }
    ckpt = None if fresh else find_checkpoint(out_dir, LAST)
    if d.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    D.barrier(d)
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text())
        saved_cfg = {k: saved.get("config", {}).get(k) for k in ("kind", "model")}
        if saved_cfg != {"kind": kind, "model": config["model"]}:
            raise CheckpointError(
                f"{out_dir} holds a checkpoint of another run ({saved.get('kind')}, model "
                f"{saved.get('config', {}).get('model', {}).get('name')}): use another -o or --fresh"
            )
        state = load_checkpoint(ckpt, model, optimizer)
        state.pop("optimizer", None)
        model.to(d.device)
        if state.get("finished"):
            log.info(
                "%s already finished (%d epochs); nothing to do (use --fresh to train again)", out_dir, state["epoch"]
            )
            return TrainResult(
                out_dir,
                kind,
                state["epoch"],
                state["global_step"],
                state["best_val"] or math.nan,
                state["history"],
                False,
                bool(state.get("stopped_early")),
            )
        log.info("resuming %s from %s: epoch %d, step %d", kind, ckpt, state["epoch"] + 1, state["global_step"])
    metrics = MetricsLog(out_dir, d.is_main)
    if ckpt is not None:
        metrics.write({"event": "resume", "step": state["global_step"], "epoch": state["epoch"]})
    ddp: nn.Module = DDP(net, device_ids=[d.local_rank] if d.device.type == "cuda" else None) if d.enabled else net

    train_ds = split_dataset(data, "train", d, identity_faces=model_cfg.identity_faces, shuffle=True, seed=cfg.seed)
    steps_per_epoch = D.all_min(d, len(train_ds) // cfg.batch)
    if cfg.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.steps_per_epoch)
    if steps_per_epoch < 1:
        raise UserError(f"the train split of {data} has fewer than {cfg.batch} samples per rank: lower train.batch")
    blur_gen = torch.Generator()
    interrupted = False
    stream = None
    if real is not None:  # where an uninterrupted run would be in it: one batch per step s with s % real_every == 0
        real_ds = split_dataset(
            real, "train", d, identity_faces=model_cfg.identity_faces, shuffle=True, seed=cfg.seed + 1
        )
        used = (state["global_step"] + cfg.real_every - 1) // cfg.real_every
        stream = BatchStream(real_ds, cfg.batch, cfg.workers, d.device, start=used)

    def checkpoint(tag: str) -> None:
        if d.is_main:
            save_checkpoint(
                out_dir, tag, model, optimizer if tag == LAST else None, {**state, "config": config}, config
            )
        D.barrier(d)

    if ckpt is None:  # the untrained model's score: the reference the first epochs must beat
        val0 = validate(kind, model, data, d, cfg)
        record0 = {"event": "epoch", "epoch": 0, "step": 0, **val0, "world_size": d.world}
        state["history"].append(record0)
        metrics.write(record0)
        if d.is_main:
            log.info("before training: val L1 %.5f", val0["val_l1"])
    with _StopFlag() as stop:
        while state["epoch"] < cfg.epochs and not state.get("finished"):
            epoch = state["epoch"]
            train_ds.set_epoch(epoch)
            skip = state["step_in_epoch"]
            bar = tqdm(
                total=steps_per_epoch,
                initial=skip,
                desc=f"{kind} epoch {epoch + 1}/{cfg.epochs}",
                disable=not (progress and d.is_main),
                unit="step",
                dynamic_ncols=True,
            )
            t0, seen, loss_sum, loss_n = time.perf_counter(), 0, 0.0, 0
            real_sum, real_n = 0.0, 0
            for b in batches(loader(train_ds, cfg.batch, cfg.workers), d.device, skip=skip):
                if state["step_in_epoch"] >= steps_per_epoch:
                    break
                lr = lr_at(cfg, state["global_step"], steps_per_epoch)
                for g in optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_mult", 1.0)
                if kind == "generator":
                    rb = stream.next() if stream is not None and state["global_step"] % cfg.real_every == 0 else None
                    mfcc, identity = b.mfcc, b.identity
                    if rb is not None:  # one forward pass over both sources
                        mfcc, identity = torch.cat([mfcc, rb.mfcc]), torch.cat([identity, rb.identity])
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16 and d.device.type == "cpu"):
                        both = ddp(mfcc, identity).float()
                    n = b.target.shape[0]
                    out, target = both[:n], b.target
                    loss = weighted_l1(
                        out, target, cfg.mouth_weight, cfg.pyramid_levels
                    )  # L1 (paper eq. 1), mouth band weighted
                    if cfg.motion_weight > 0 and b.flow is not None and b.cavity is not None:
                        flow, mask_logit = model.decoder.last_motion
                        loss = loss + cfg.motion_weight * motion_loss(
                            flow[:n].float(), mask_logit[:n].float(), b.flow, b.cavity, cfg.mouth_weight
                        )
                    if rb is not None:
                        real_loss = weighted_l1(both[n:], rb.target, cfg.mouth_weight, cfg.pyramid_levels)
                        loss = loss + cfg.real_weight * real_loss
                        real_sum += float(real_loss.detach())
                        real_n += 1
                else:
                    blur_gen.manual_seed(cfg.seed * 1_000_003 + state["global_step"] * 1009 + d.rank)
                    blurred = blur_like_generator(b.target, *cfg.blur_sigma, blur_gen)
                    out = ddp(blurred)
                    target = b.target
                    loss = (out - target).abs().mean()  # L1 (paper eq. 1)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
                optimizer.step()
                state["global_step"] += 1
                state["step_in_epoch"] += 1
                seen += b.target.shape[0]
                loss_sum += float(loss.detach())
                loss_n += 1
                rate = seen * d.world / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss_sum / loss_n:.4f}", samples_s=f"{rate:.1f}")
                bar.update(1)
                if state["global_step"] % cfg.log_every == 0:
                    rec = {
                        "event": "step",
                        "step": state["global_step"],
                        "epoch": epoch + 1,
                        "loss": float(loss.detach()),
                        "lr": lr,
                        "samples_per_s": rate,
                    }
                    if real_n:
                        rec["real_l1"] = (
                            real_sum / real_n
                        )  # the real video's weighted image loss, since the epoch began
                    metrics.write(rec)
                    if d.is_main:
                        log.info(
                            "epoch %d step %d loss %.5f lr %.2e %.1f samples/s",
                            epoch + 1,
                            state["global_step"],
                            float(loss.detach()),
                            lr,
                            rate,
                        )
                stop_now = D.any_rank(
                    d,
                    stop.signal is not None
                    or (stop_after_steps is not None and state["global_step"] >= stop_after_steps),
                )
                if stop_now:
                    interrupted = True
                    break
                if state["global_step"] % cfg.checkpoint_every == 0 and state["step_in_epoch"] < steps_per_epoch:
                    checkpoint(LAST)
            bar.close()
            if interrupted:
                checkpoint(LAST)
                why = f"signal {stop.signal}" if stop.signal is not None else f"--stop-after-steps {stop_after_steps}"
                log.warning(
                    "stopped by %s at epoch %d step %d: checkpoint in %s; rerun the same command to resume",
                    why,
                    epoch + 1,
                    state["global_step"],
                    out_dir / LAST,
                )
                break
            val = validate(kind, model, data, d, cfg)
            train_loss = D.all_sum(d, [loss_sum, loss_n])
            record = {
                "event": "epoch",
                "epoch": epoch + 1,
                "step": state["global_step"],
                "train_l1": train_loss[0] / max(train_loss[1], 1),
                **val,
                "train_samples": steps_per_epoch * cfg.batch * d.world,
                "world_size": d.world,
                "seconds": time.perf_counter() - t0,
            }
            improved = state["best_val"] is None or val["val_l1"] < state["best_val"]
            if improved:
                state["best_val"], state["bad_epochs"] = val["val_l1"], 0
            else:
                state["bad_epochs"] += 1
            record["best"] = improved
            state["history"].append(record)
            metrics.write(record)
            if d.is_main:
                log.info(
                    "epoch %d: train L1 %.5f, val L1 %.5f%s",
                    epoch + 1,
                    record["train_l1"],
                    val["val_l1"],
                    " (best)" if improved else "",
                )
            state["epoch"], state["step_in_epoch"] = epoch + 1, 0
            stopped_early = cfg.patience > 0 and state["bad_epochs"] >= cfg.patience
            state["stopped_early"] = stopped_early
            state["finished"] = stopped_early or state["epoch"] >= cfg.epochs
            if improved:
                checkpoint(BEST)
            checkpoint(LAST)
            if stopped_early and d.is_main:
                log.info("validation L1 has not improved for %d epochs: stopping", cfg.patience)
    metrics.close()
    start = next((r["val_l1"] for r in state["history"] if r.get("epoch") == 0), None)
    if d.is_main and start is not None and state["best_val"] is not None and state["best_val"] >= start:
        # A fine-tune's first epochs often score worse than the weights it began from; "best" is only the
        # best of the run's epochs, so say so rather than let best/ pass for an improvement.
        log.warning(
            "no epoch beat the validation L1 the run started from (%.5f; best epoch %.5f): %s is no better "
            "than the starting weights",
            start,
            state["best_val"],
            out_dir / BEST,
        )
    return TrainResult(
        out_dir,
        kind,
        state["epoch"],
        state["global_step"],
        state["best_val"] if state["best_val"] is not None else math.nan,
        state["history"],
        interrupted,
        bool(state.get("stopped_early")),
    )


def with_overrides(cfg: TrainConfig, **kw: Any) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})
