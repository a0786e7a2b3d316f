"""The dataset's JSON index (``index.json``) and the per-video records it is assembled from.

``prepare`` writes one record per source video into ``records/<video_id>.json`` as soon as that
video is finished (prepared or skipped, with the reason); a rerun skips the videos whose record
matches the file's size and modification time, which makes a run resumable. ``index.json`` is
rebuilt from all the records at the end of every run and written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech2vid.errors import UserError
from speech2vid.files import atomic_path
from speech2vid.training.datasets.format import FORMAT_NAME, FORMAT_VERSION, FPS, SPLITS

INDEX_FILE = "index.json"
RECORDS_DIR = "records"
SHARDS_DIR = "shards"
REPORT_FILE = "report.txt"


class DatasetError(UserError):
    """A dataset folder is missing, incomplete or of another format."""


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class ShardInfo:
    path: str  # relative to the dataset root
    video: str
    group: str
    samples: int
    tracks: int


@dataclass(frozen=True)
class SplitInfo:
    shards: tuple[ShardInfo, ...]
    samples: int
    tracks: int
    videos: int
    groups: tuple[str, ...]  # identities (speakers): disjoint between train and val
    seconds: float  # duration of the kept tracks


@dataclass(frozen=True)
class DatasetIndex:
    """What ``index.json`` says; :func:`open_dataset` reads it."""

    root: Path
    fps: int
    sample_stride: int
    identity_min_gap: int
    splits: dict[str, SplitInfo]
    provenance: dict[str, Any]
    skipped: tuple[dict[str, str], ...] = field(default=())
    lookahead_columns: int = 17  # MFCC columns after each frame its window reads (17: centred; features/windows.py)

    def split(self, name: str) -> SplitInfo:
        if name not in self.splits:
            raise DatasetError(f"dataset {self.root} has no split {name!r}: choose one of {', '.join(self.splits)}")
        return self.splits[name]

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.splits.values())


def read_records(root: Path) -> list[dict[str, Any]]:
    folder = root / RECORDS_DIR
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _kept(record: dict[str, Any]) -> int:
    return sum(1 for t in record["tracks"] if t.get("kept"))


def build_index(root: Path, settings: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    """Assemble ``index.json`` from the per-video records and write it; returns the index data."""
    records = read_records(root)
    splits: dict[str, Any] = {}
    for name in SPLITS:
        ok = [r for r in records if r["status"] == "ok" and r["split"] == name]
        splits[name] = {
            "shards": [
                {
                    "path": r["shard"],
                    "video": r["video"],
                    "group": r["group"],
                    "samples": r["samples"],
                    "tracks": _kept(r),
                }
                for r in ok
            ],
            "samples": sum(r["samples"] for r in ok),
            "tracks": sum(_kept(r) for r in ok),
            "videos": len(ok),
            "groups": sorted({r["group"] for r in ok}),
            "seconds": round(sum(r["track_seconds"] for r in ok), 3),
        }
    data = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": FPS,
        **settings,
        "splits": splits,
        "skipped": [{"video": r["video"], "reason": r["reason"]} for r in records if r["status"] != "ok"],
        "provenance": provenance,
    }
    write_json_atomic(root / INDEX_FILE, data)
    return data


def open_dataset(root: str | os.PathLike[str]) -> DatasetIndex:
    """Read ``<root>/index.json``; raises :class:`DatasetError` with a one-line reason."""
    root = Path(root).expanduser()
    path = root / INDEX_FILE
    if not path.is_file():
        raise DatasetError(
            f"{root} is not a speech2vid dataset (no {INDEX_FILE}): make one with "
            "'speech2vid prepare VIDEOS -o DIR' or 'speech2vid synth -o DIR'"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path} ({exc}): rerun the command that made the dataset") from None
    if data.get("format") != FORMAT_NAME or data.get("version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path} is not a {FORMAT_NAME} v{FORMAT_VERSION} index "
            f"(format {data.get('format')!r} v{data.get('version')!r}): remake the dataset"
        )
    splits = {
        name: SplitInfo(
            shards=tuple(ShardInfo(**s) for s in d["shards"]),
            samples=int(d["samples"]),
            tracks=int(d["tracks"]),
            videos=int(d["videos"]),
            groups=tuple(d["groups"]),
            seconds=float(d["seconds"]),
        )
        for name, d in data["splits"].items()
    }
    return DatasetIndex(
        root=root,
        fps=int(data["fps"]),
        sample_stride=int(data["sample_stride"]),
        identity_min_gap=int(data["identity_min_gap"]),
        splits=splits,
        lookahead_columns=int(data.get("lookahead_columns", 17)),
        provenance=dict(data.get("provenance", {})),
        skipped=tuple(data.get("skipped", ())),
    )
