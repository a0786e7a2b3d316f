"""``ShardedSamples``: a PyTorch IterableDataset over a split's shards, split across DDP ranks and workers.

Shards are dealt out, never frames: the split's shards are put in one order per epoch (shuffled with
``seed + epoch`` when ``shuffle``, the same order on every rank), rank ``r`` of ``w`` takes every
``w``-th shard from ``r``, and DataLoader worker ``i`` of ``n`` takes every ``n``-th of those. Each
sample is yielded by exactly one worker of one rank per epoch. Ranks may get different sample counts
(shards differ in size): train for a fixed number of steps, or drop the tail, as DDP needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from speech2vid.training.datasets.format import TARGET_OFFSET, TARGET_SIZE, Track, read_shard
from speech2vid.training.datasets.index import DatasetError, ShardInfo, open_dataset

SHUFFLE_BUFFER = 2048  # samples mixed across tracks before yielding (memory: references, not copies)


def _default_rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def make_sample(track: Track, i: int, identity_faces: int, min_gap: int, rng: np.random.Generator) -> dict[str, Any]:
    """Sample ``i`` of ``track``: the target, its MFCC window, and identity faces >= ``min_gap`` frames away."""
    candidates = np.flatnonzero(np.abs(track.frames.astype(np.int64) - int(track.frames[i])) >= min_gap)
    if candidates.size == 0:
        raise ValueError(f"track {track.key} frame {track.frames[i]} has no identity frame {min_gap} frames away")
    pick = rng.choice(candidates, identity_faces, replace=candidates.size < identity_faces)
    identity = track.faces[pick].transpose(0, 3, 1, 2).reshape(3 * identity_faces, *track.faces.shape[1:3])
    o, s = TARGET_OFFSET, TARGET_SIZE
    sample = {
        "mfcc": track.mfcc[i][None].copy(),
        "identity": np.ascontiguousarray(identity),
        "target": np.ascontiguousarray(track.faces[i, o : o + s, o : o + s].transpose(2, 0, 1)),
        "key": f"{track.key}/{int(track.frames[i]):06d}",
        "video": str(track.meta.get("video", "")),
        "frame": int(track.frames[i]),
        "mouth_open": np.float32(track.mouth_open[i]),
        "visemes": track.visemes[i].copy(),
        "identity_frames": track.frames[pick].astype(np.int64),
    }
    if track.landmarks is not None:  # the warp head's ground truth: reference = the first identity face
        from speech2vid.training.synth.motion_truth import motion_truth

        sample["flow"], sample["cavity"] = motion_truth(track.landmarks[pick[0]], track.landmarks[i])
    return sample


class ShardedSamples(IterableDataset[dict[str, Any]]):
    """Training samples of one split of a dataset made by ``prepare`` or ``synth``.

    Yields dicts (numpy; the default DataLoader collate makes tensors of them):

    - ``mfcc``: float32 (1, 12, 35), the window centred on the target frame;
    - ``identity``: uint8 (3F, 112, 112) RGB, F = ``identity_faces`` registered faces of the same track,
      each at least ``identity_min_gap`` frames (index.json) from the target;
    - ``target``: uint8 (3, 109, 109) RGB, the central crop of the target's registered face;
    - ``key`` (str, unique), ``video`` (str), ``frame`` (int, on the 25 fps grid);
    - ``mouth_open``: float32, ground-truth jaw opening 0..1 (NaN for real video);
    - ``visemes``: float32 (4,), ground truth (NaN for real video), names in ``VISEME_NAMES``;
    - ``identity_frames``: int64 (F,), frames the identity faces come from.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        *,
        identity_faces: int = 5,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle_buffer: int = SHUFFLE_BUFFER,
    ):
        super().__init__()
        if identity_faces not in (1, 5):
            raise ValueError(f"identity_faces must be 1 or 5, got {identity_faces}")
        self.index = open_dataset(root)
        self.root = Path(root)
        self.split = split
        self.identity_faces = identity_faces
        self.shuffle = shuffle
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer if shuffle else 0
        default_rank, default_world = _default_rank()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not within world size {self.world_size}")
        self.shards = self.index.split(split).shards
        if len(self.shards) < self.world_size:
            raise DatasetError(
                f"the {split} split of {root} has {len(self.shards)} shard(s), fewer than the {self.world_size} "
                "ranks: make a larger dataset or train on fewer GPUs"
            )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call before each epoch, like ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def rank_shards(self) -> list[ShardInfo]:
        """This rank's shards for the current epoch."""
        order = list(self.shards)
        if self.shuffle:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(order))
            order = [order[i] for i in perm]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        """Samples this rank yields in the current epoch (all of its workers together)."""
        return sum(s.samples for s in self.rank_shards())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        wid, nworkers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        shards = self.rank_shards()[wid::nworkers]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, wid])
        gap = self.index.identity_min_gap
        buffer: list[tuple[Track, int]] = []
        for shard in shards:
            for track in read_shard(self.root / shard.path):
                targets = np.flatnonzero(track.is_target)
                if self.shuffle:
                    rng.shuffle(targets)
                for i in targets:
                    if self.shuffle_buffer <= 0:
                        yield make_sample(track, int(i), self.identity_faces, gap, rng)
                        continue
                    buffer.append((track, int(i)))
                    if len(buffer) >= self.shuffle_buffer:
                        j = int(rng.integers(len(buffer)))
                        buffer[j], buffer[-1] = buffer[-1], buffer[j]
                        t, k = buffer.pop()
                        yield make_sample(t, k, self.identity_faces, gap, rng)
        rng.shuffle(buffer)
        for t, k in buffer:
            yield make_sample(t, k, self.identity_faces, gap, rng)
