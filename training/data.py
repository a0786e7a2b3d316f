"""Batches from the dataset reader, as the model takes them; the artificial blur of the deblur task."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from speech2vid.training.datasets import DatasetError, ShardedSamples, open_dataset
from speech2vid.training.distributed import Dist


@dataclass
class Batch:
    mfcc: torch.Tensor  # (N, 1, 12, 35) float32
    identity: torch.Tensor  # (N, 3F, 112, 112) float32 raw 0-255 (the model's input convention)
    target: torch.Tensor  # (N, 3, 109, 109) float32 in [0, 1]
    raw: dict[str, Any]  # everything else the reader yields (key, video, frame, mouth_open, visemes)
    flow: torch.Tensor | None = None  # (N, 2, 109, 109) ground-truth motion field (training/synth/motion_truth.py)
    cavity: torch.Tensor | None = None  # (N, 1, 109, 109) the target's open mouth


def to_batch(sample: dict[str, Any], device: torch.device) -> Batch:
    return Batch(
        mfcc=sample["mfcc"].to(device, torch.float32, non_blocking=True),
        identity=sample["identity"].to(device, non_blocking=True).float(),
        target=sample["target"].to(device, non_blocking=True).float() / 255.0,
        raw=sample,
        flow=sample["flow"].to(device, torch.float32) if "flow" in sample else None,
        cavity=sample["cavity"].to(device, torch.float32) if "cavity" in sample else None,
    )


def split_dataset(
    root: str | Path, split: str, d: Dist, *, identity_faces: int, shuffle: bool, seed: int
) -> ShardedSamples:
    """This rank's part of a split; a split with fewer shards than ranks is read whole by rank 0 only."""
    index = open_dataset(root)
    shards = len(index.split(split).shards)
    if shards == 0:
        raise DatasetError(f"the {split} split of {root} is empty: make a larger dataset")
    if shards >= d.world:
        return ShardedSamples(
            root, split, identity_faces=identity_faces, shuffle=shuffle, seed=seed, rank=d.rank, world_size=d.world
        )
    if split == "train":
        raise DatasetError(
            f"the train split of {root} has {shards} shard(s), fewer than the {d.world} ranks: "
            "make a larger dataset or run fewer processes"
        )
    return ShardedSamples(root, split, identity_faces=identity_faces, shuffle=shuffle, seed=seed, rank=0, world_size=1)


def loader(ds: ShardedSamples, batch: int, workers: int) -> DataLoader[dict[str, Any]]:
    workers = min(workers, len(ds.rank_shards()))  # a worker without shards would only cost start-up time
    return DataLoader(
        ds, batch_size=batch, num_workers=workers, persistent_workers=False, pin_memory=torch.cuda.is_available()
    )


def batches(dl: DataLoader[dict[str, Any]], device: torch.device, skip: int = 0) -> Iterator[Batch]:
    """Batches of ``dl``; the first ``skip`` are read and dropped (resuming mid-epoch in the same order)."""
    for i, sample in enumerate(dl):
        if i >= skip:
            yield to_batch(sample, device)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of (N, C, H, W) with its own Gaussian sigma (N,), reflect-padded, separable."""
    n, c, h, w = images.shape
    radius = max(1, math.ceil(3.0 * float(sigma.max())))
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    k = torch.exp(-0.5 * (x[None, :] / sigma[:, None].to(images.dtype)) ** 2)
    k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N*C, K): one kernel per channel
    flat = images.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def blur_like_generator(target: torch.Tensor, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """The deblur task's input: the ground truth blurred by a random Gaussian, as soft as the generator's."""
    sigma = low + (high - low) * torch.rand(target.shape[0], generator=gen)
    return gaussian_blur(target, sigma.to(target.device)).clamp(0.0, 1.0)


class BatchStream:
    """Endless batches of a dataset's train split, epoch after epoch (each shuffled by its number), that can
    start at any position: a run resumed at step k reads the batches an uninterrupted run would have read.
    The second source of a mixed run (``train --real``)."""

    def __init__(self, ds: ShardedSamples, batch: int, workers: int, device: torch.device, start: int = 0):
        self.ds, self.batch, self.workers, self.device = ds, batch, workers, device
        self.per_epoch = len(ds) // batch
        if self.per_epoch < 1:
            raise DatasetError(f"the train split of {ds.root} has fewer than {batch} samples: lower train.batch")
        self.used = start
        self._it: Iterator[Batch] | None = None

    def next(self) -> Batch:
        if self._it is None:
            epoch, skip = divmod(self.used, self.per_epoch)
            self.ds.set_epoch(epoch)
            self._it = batches(loader(self.ds, self.batch, self.workers), self.device, skip=skip)
        b = next(self._it, None)
        if b is None or b.target.shape[0] < self.batch:  # the epoch's end, or its partial last batch: the next epoch
            self.used = (self.used // self.per_epoch + 1) * self.per_epoch
            self._it = None
            return self.next()
        self.used += 1
        if self.used % self.per_epoch == 0:
            self._it = None  # epochs hold the same count of whole batches, however the reader ends
        return b
