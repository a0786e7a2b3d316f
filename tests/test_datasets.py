"""The dataset format and reader: shards round-trip, the sample contract, DDP/worker splitting, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speech2vid.training.datasets import (
    N_VISEMES,
    DatasetError,
    ShardedSamples,
    Track,
    open_dataset,
    read_shard,
    target_crop,
    write_shard,
)
from speech2vid.training.datasets.index import build_index, write_json_atomic

GAP = 10


def _track(key: str, n: int, seed: int, stride: int = 5) -> Track:
    rng = np.random.default_rng(seed)
    frames = np.arange(n, dtype=np.int32) * stride
    faces = rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)
    faces[:, 0, 0, 0] = np.arange(n)  # each face carries its row index in a corner pixel
    return Track(
        key=key,
        faces=faces,
        mfcc=rng.standard_normal((n, 12, 35)).astype(np.float32),
        frames=frames,
        is_target=np.ones(n, bool),
        mouth_open=rng.random(n).astype(np.float32),
        visemes=rng.random((n, N_VISEMES)).astype(np.float32),
        lip_gap=rng.random(n).astype(np.float32),
        meta={"video": f"{key}.mp4"},
    )


def _dataset(root: Path, n_shards: int = 6, per_shard: int = 2, n: int = 8) -> Path:
    """A hand-made dataset: ``n_shards`` train shards and one val shard, each ``per_shard`` tracks of ``n`` frames."""
    records = root / "records"
    for split, count in (("train", n_shards), ("val", 1)):
        for s in range(count):
            vid = f"{split}{s}"
            tracks = [
                _track(f"{vid}-t{k}", n, seed=s * 10 + k + (100 if split == "val" else 0)) for k in range(per_shard)
            ]
            write_shard(root / f"shards/{vid}.tar", tracks)
            write_json_atomic(
                records / f"{vid}.json",
                {
                    "video": f"{vid}.mp4",
                    "group": f"g-{vid}",
                    "split": split,
                    "status": "ok",
                    "shard": f"shards/{vid}.tar",
                    "samples": per_shard * n,
                    "tracks": [{"kept": True}] * per_shard,
                    "track_seconds": per_shard * n * 0.2,
                },
            )
    build_index(root, {"sample_stride": 5, "identity_min_gap": GAP}, {"command": "test"})
    return root


def test_shard_round_trip(tmp_path: Path) -> None:
    tracks = [_track("a-t0", 5, 0), _track("a-t1", 3, 1)]
    write_shard(tmp_path / "s.tar", tracks)
    back = list(read_shard(tmp_path / "s.tar"))
    assert [t.key for t in back] == ["a-t0", "a-t1"]
    for a, b in zip(tracks, back):
        for name, arr in a.arrays().items():
            np.testing.assert_array_equal(arr, getattr(b, name), err_msg=name)
        assert b.meta["video"] == a.meta["video"] and b.meta["n"] == len(a.frames)
    assert not list(tmp_path.glob(".*partial*")), "temporary file left behind"


def test_track_rejects_bad_shapes() -> None:
    t = _track("x-t0", 4, 0)
    with pytest.raises(ValueError, match="mfcc"):
        Track(
            key="x-t1",
            faces=t.faces,
            mfcc=t.mfcc[:, :, :34],
            frames=t.frames,
            is_target=t.is_target,
            mouth_open=t.mouth_open,
            visemes=t.visemes,
            lip_gap=t.lip_gap,
            meta={},
        )


def test_target_is_the_central_109_crop() -> None:
    face = np.arange(112 * 112 * 3, dtype=np.int64).reshape(112, 112, 3)
    crop = target_crop(face)
    assert crop.shape == (109, 109, 3)
    # Rows/columns 1..109: one pixel off the top/left edge and two off the bottom/right (112 - 109 = 3).
    np.testing.assert_array_equal(crop, face[1:110, 1:110])
    np.testing.assert_array_equal(target_crop(face.transpose(2, 0, 1)), face[1:110, 1:110].transpose(2, 0, 1))


def test_samples_follow_the_contract(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    index = open_dataset(root)
    assert index.split("train").samples == 6 * 2 * 8 and index.identity_min_gap == GAP
    tracks = {t.key: t for p in sorted((root / "shards").glob("*.tar")) for t in read_shard(p)}
    for faces in (1, 5):
        samples = list(ShardedSamples(root, "train", identity_faces=faces, seed=3))
        assert len(samples) == 96
        s = samples[0]
        assert s["mfcc"].shape == (1, 12, 35) and s["mfcc"].dtype == np.float32
        assert s["identity"].shape == (3 * faces, 112, 112) and s["identity"].dtype == np.uint8
        assert s["target"].shape == (3, 109, 109) and s["target"].dtype == np.uint8
        assert s["visemes"].shape == (N_VISEMES,) and s["visemes"].dtype == np.float32
        for s in samples:
            track = tracks[s["key"].split("/")[0]]
            row = int(np.flatnonzero(track.frames == s["frame"])[0])
            np.testing.assert_array_equal(s["target"], track.faces[row, 1:110, 1:110].transpose(2, 0, 1))
            np.testing.assert_array_equal(s["mfcc"][0], track.mfcc[row])
            assert s["mouth_open"] == track.mouth_open[row]
            # Identity faces come from the same track, at least GAP frames from the target.
            rows = s["identity"][0::3, 0, 0]  # the row index stamped in each face's corner (red channel)
            np.testing.assert_array_equal(track.frames[rows], s["identity_frames"])
            assert np.all(np.abs(s["identity_frames"] - s["frame"]) >= GAP)
            for k, r in enumerate(rows):
                np.testing.assert_array_equal(s["identity"][3 * k : 3 * k + 3], track.faces[r].transpose(2, 0, 1))


def test_ranks_and_workers_split_shards_without_overlap(tmp_path: Path) -> None:
    root = _dataset(tmp_path, n_shards=6)
    keys_all = {s["key"] for s in ShardedSamples(root, "train", seed=1)}
    per_rank = []
    for rank in range(3):
        ds = ShardedSamples(root, "train", seed=1, rank=rank, world_size=3)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        keys = [s["key"] for s in loader]
        assert len(keys) == len(set(keys)) == len(ds), "a worker repeated or lost samples"
        per_rank.append(set(keys))
    assert set().union(*per_rank) == keys_all
    assert sum(len(k) for k in per_rank) == len(keys_all)


def test_order_is_deterministic_for_a_seed_and_changes_with_the_epoch(tmp_path: Path) -> None:
    root = _dataset(tmp_path)

    def order(seed: int, epoch: int = 0) -> list[str]:
        ds = ShardedSamples(root, "train", seed=seed)
        ds.set_epoch(epoch)
        return [s["key"] for s in ds]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert order(7, 1) != order(7, 0) and sorted(order(7, 1)) == sorted(order(7, 0))
    unshuffled = [s["key"] for s in ShardedSamples(root, "train", shuffle=False)]
    assert unshuffled == [s["key"] for s in ShardedSamples(root, "train", shuffle=False)]


def test_collated_batches(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    batch = next(iter(torch.utils.data.DataLoader(ShardedSamples(root, "val"), batch_size=4)))
    assert batch["mfcc"].shape == (4, 1, 12, 35) and batch["identity"].shape == (4, 15, 112, 112)
    assert batch["target"].shape == (4, 3, 109, 109) and batch["target"].dtype == torch.uint8
    assert len(batch["key"]) == 4


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a speech2vid dataset"):
        open_dataset(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(DatasetError, match="remake the dataset"):
        open_dataset(tmp_path)
    root = _dataset(tmp_path / "ds", n_shards=2)
    with pytest.raises(DatasetError, match="fewer than the 3 ranks"):
        ShardedSamples(root, "train", rank=0, world_size=3)
    with pytest.raises(DatasetError, match="no split"):
        ShardedSamples(root, "test")
