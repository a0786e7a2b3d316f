"""Training data on disk: tar shards of registered face tracks, a JSON index, and a streaming reader.

Both ``speech2vid prepare`` (real videos) and ``speech2vid synth`` (the synthetic corpus) write this
format, so training never knows which one it reads. The full description is docs/data.md.

Contract (other code relies on these names)::

    from speech2vid.training.datasets import open_dataset, ShardedSamples

    index = open_dataset("data/synth")        # DatasetIndex: splits, shards, counts, fps, provenance
    index.split("train").samples              # sample count of a split
    ds = ShardedSamples("data/synth", "train", identity_faces=5, shuffle=True, seed=0)
    ds.set_epoch(epoch)                       # reshuffle per epoch
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=2)

Each sample is a dict: ``mfcc`` float32 (1, 12, 35); ``identity`` uint8 (3F, 112, 112) RGB, F = 1 or 5
faces of the same track at least ``index.identity_min_gap`` frames from the target; ``target`` uint8
(3, 109, 109) RGB, the central crop of the registered 112x112 face (MODEL.md); ``key`` str; ``video``
str; ``frame`` int (25 fps grid); ``mouth_open`` float32 (NaN for real video); ``visemes`` float32 (4,)
(NaN-filled for real video; names in :data:`VISEME_NAMES`); ``identity_frames`` int64 (F,).
``rank`` / ``world_size`` default to ``torch.distributed``'s when it is initialised; shards are dealt
to ranks, then to DataLoader workers. Train and val are split by identity group (speaker), never by
frame: no group appears in both.
"""

from __future__ import annotations

from speech2vid.training.datasets.format import (
    ALIGNED_SIZE,
    N_VISEMES,
    TARGET_OFFSET,
    TARGET_SIZE,
    VISEME_NAMES,
    Track,
    read_shard,
    target_crop,
    write_shard,
)
from speech2vid.training.datasets.index import DatasetError, DatasetIndex, ShardInfo, SplitInfo, open_dataset
from speech2vid.training.datasets.reader import ShardedSamples, make_sample

__all__ = [
    "ALIGNED_SIZE",
    "DatasetError",
    "DatasetIndex",
    "N_VISEMES",
    "ShardInfo",
    "ShardedSamples",
    "SplitInfo",
    "TARGET_OFFSET",
    "TARGET_SIZE",
    "Track",
    "VISEME_NAMES",
    "make_sample",
    "open_dataset",
    "read_shard",
    "target_crop",
    "write_shard",
]
