"""``speech2vid prepare``: a folder of videos -> a dataset, in parallel processes, resumable.

Videos are found recursively. The *group* of a video (its speaker or identity) is its first
sub-folder under the videos folder (VoxCeleb/LRW-style ``speaker/clip.mp4``), or its own name when it
lies at the top. Train/val are split by group, never by video or frame: a ``splits.json`` in the
videos folder (``{"group": "train" | "val"}``) decides where present; otherwise a hash of the group
name does (stable as the folder grows), with at least one validation group when there are two or more.

Each finished video leaves a record (``records/<video_id>.json``, written atomically after its
shard); a rerun skips videos whose record matches the file's size and modification time and the
settings, so an interrupted run resumes. Bad inputs are skipped with their reason in ``report.txt``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

from speech2vid.config import PrepareConfig
from speech2vid.errors import UserError
from speech2vid.features.windows import MAX_LOOKAHEAD_COLUMNS
from speech2vid.files import VIDEO_SUFFIXES, atomic_path
from speech2vid.training.datasets.format import SPLITS
from speech2vid.training.datasets.index import RECORDS_DIR, REPORT_FILE, build_index, read_records, write_json_atomic
from speech2vid.training.parallel import run_jobs
from speech2vid.training.prepare.video import VideoJob, prepare_video

log = logging.getLogger("speech2vid.training.prepare")

SPLITS_FILE = "splits.json"


class PrepareError(UserError):
    """Nothing could be prepared, or the folders cannot be used."""


@dataclasses.dataclass(frozen=True)
class PrepareSummary:
    root: Path
    prepared: int  # videos prepared in this run
    resumed: int  # videos skipped because an earlier run finished them
    skipped: list[tuple[str, str]]  # (video, reason), this run and earlier ones
    index: dict[str, Any]


def find_videos(folder: Path) -> tuple[list[Path], list[str]]:
    """Video files under ``folder`` (sorted) and the sub-folders that could not be read."""
    unreadable: list[str] = []

    def onerror(exc: OSError) -> None:
        unreadable.append(f"{exc.filename}: cannot read folder ({exc.strerror})")

    found = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            if p.suffix.lower() in VIDEO_SUFFIXES and not name.startswith("."):
                found.append(p)
    return sorted(found), unreadable


def video_id(rel: str) -> str:
    """A file-name-safe unique id of a relative path (no '/' or '.', as WebDataset keys need)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in rel)
    return f"{safe}_{hashlib.sha1(rel.encode()).hexdigest()[:6]}"


def group_of(rel: str) -> str:
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def _hash01(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / float(16**12)


def assign_splits(groups: Iterable[str], val_fraction: float, given: dict[str, str] | None = None) -> dict[str, str]:
    """group -> split. ``given`` (from splits.json) wins; the rest go by hash, at least one val group when >= 2."""
    groups = sorted(set(groups))
    given = given or {}
    out = {g: given[g] for g in groups if g in given}
    free = [g for g in groups if g not in out]
    for g in free:
        out[g] = "val" if _hash01(g) < val_fraction else "train"
    if val_fraction > 0 and len(groups) >= 2 and "val" not in out.values() and free:
        out[min(free, key=_hash01)] = "val"
    if len(groups) >= 2 and "train" not in out.values() and free:
        out[max(free, key=_hash01)] = "train"
    return out


def _read_splits_file(folder: Path) -> dict[str, str]:
    path = folder / SPLITS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PrepareError(f'cannot read {path} ({exc}): it must map group names to "train" or "val"') from None
    bad = {k: v for k, v in data.items() if v not in SPLITS} if isinstance(data, dict) else data
    if bad or not isinstance(data, dict):
        raise PrepareError(f'{path} must map group names to "train" or "val", got {bad!r}')
    return data


def _source_stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamp(cfg_dict: dict[str, Any], lookahead_columns: int) -> dict[str, Any]:
    """The settings a video's record carries: a rerun with other settings prepares it again."""
    return {**cfg_dict, "lookahead_columns": lookahead_columns}


def _run_job(args: tuple[VideoJob, str, dict[str, Any], dict[str, Any], int]) -> dict[str, Any]:
    job, out_root, cfg_dict, stamp, lookahead_columns = args
    cfg = PrepareConfig(**cfg_dict)
    try:
        record = prepare_video(job, Path(out_root), cfg, lookahead_columns)
    except Exception as exc:  # a bug on one video must not stop the batch; the report keeps it
        log.exception("unexpected error preparing %s", job.rel)
        record = {
            "video": job.rel,
            "video_id": job.video_id,
            "group": job.group,
            "split": job.split,
            "status": "skipped",
            "reason": f"internal error ({type(exc).__name__}: {exc})",
            "tracks": [],
            "samples": 0,
            "track_seconds": 0.0,
            "shard": None,
        }
    record["source"] = stamp
    record["settings"] = _stamp(cfg_dict, lookahead_columns)
    write_json_atomic(Path(out_root) / RECORDS_DIR / f"{job.video_id}.json", record)
    return record


def run_prepare(
    videos_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    cfg: PrepareConfig,
    *,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
    lookahead_columns: int = MAX_LOOKAHEAD_COLUMNS,
) -> PrepareSummary:
    """Prepare every video under ``videos_dir`` into the dataset ``out_dir``; see the module docstring.
    The samples' MFCC windows read ``lookahead_columns`` past their frame (the model's; centred by default).

    Raises:
        PrepareError: the folders are unusable, or not a single video could be prepared (the report
            says why for each).
    """
    src = Path(videos_dir).expanduser()
    root = Path(out_dir).expanduser()
    if not src.exists():
        raise PrepareError(f"videos folder {src} not found: check the path")
    if not src.is_dir():
        raise PrepareError(f"{src} is not a folder: pass the folder that holds the videos")
    try:
        next(os.scandir(src), None)
    except PermissionError:
        raise PrepareError(f"cannot read the videos folder {src}: permission denied") from None
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepareError(f"cannot create the dataset folder {root} ({exc.strerror})") from None
    if not os.access(root, os.W_OK):
        raise PrepareError(f"dataset folder {root} is not writable")

    paths, unreadable = find_videos(src)
    rels = [p.relative_to(src).as_posix() for p in paths]
    splits = assign_splits((group_of(r) for r in rels), cfg.val_fraction, _read_splits_file(src))
    cfg_dict = dataclasses.asdict(cfg)
    stamped = _stamp(cfg_dict, lookahead_columns)
    done = {r["video"]: r for r in read_records(root)}
    jobs, resumed = [], 0
    for p, rel in zip(paths, rels):
        try:
            stamp = _source_stamp(p)
        except OSError as exc:
            unreadable.append(f"{rel}: cannot read ({exc.strerror})")
            continue
        old = done.get(rel)
        if (
            old
            and old.get("source") == stamp
            and old.get("settings") == stamped
            and (old["status"] != "ok" or (root / old["shard"]).is_file())
        ):
            resumed += 1
            continue
        g = group_of(rel)
        jobs.append((VideoJob(p, rel, video_id(rel), g, splits[g]), str(root), cfg_dict, stamp, lookahead_columns))

    workers = cfg.workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(jobs)))
    records: list[dict[str, Any]] = run_jobs(_run_job, jobs, workers, "prepare", "video", progress)

    settings = {
        "sample_stride": cfg.sample_stride,
        "identity_min_gap": cfg.identity_min_gap,
        "lookahead_columns": lookahead_columns,
    }
    prov = {"command": "prepare", "videos_dir": str(src), "prepare": cfg_dict, **(provenance or {})}
    index = build_index(root, settings, prov)
    all_records = read_records(root)
    skipped = [(r["video"], r["reason"]) for r in all_records if r["status"] != "ok"]
    _write_report(root / REPORT_FILE, all_records, unreadable)
    if not any(r["status"] == "ok" for r in all_records):
        total = len(all_records) + len(unreadable)
        raise PrepareError(
            f"nothing could be prepared from {src} ({total} input(s), "
            f"{'no video files found' if not total else 'all skipped'}): see {root / REPORT_FILE}"
        )
    return PrepareSummary(root, sum(r["status"] == "ok" for r in records), resumed, skipped, index)


def _write_report(path: Path, records: list[dict[str, Any]], unreadable: list[str]) -> None:
    lines = ["# speech2vid prepare report: one line per input; 'ok' lines give tracks and samples", ""]
    for r in sorted(records, key=lambda r: r["video"]):
        if r["status"] == "ok":
            offsets = ", ".join(
                f"{t['key']}: sync {t['sync_score']:.2f}, AV offset {t['av_offset']:+d} frames"
                for t in r["tracks"]
                if t.get("kept")
            )
            lines.append(
                f"ok       {r['video']}: {len([t for t in r['tracks'] if t.get('kept')])} track(s), "
                f"{r['samples']} samples ({offsets})"
            )
        else:
            lines.append(f"skipped  {r['video']}: {r['reason']}")
    for u in unreadable:
        lines.append(f"skipped  {u}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def stats_table(index: dict[str, Any]) -> str:
    """The dataset's statistics like the paper's Table 1 (hours, samples per split)."""
    rows = [f"{'split':<6} {'identities':>10} {'videos':>7} {'tracks':>7} {'hours':>8} {'samples':>8}"]
    for name in SPLITS:
        s = index["splits"][name]
        rows.append(
            f"{name:<6} {len(s['groups']):>10} {s['videos']:>7} {s['tracks']:>7} "
            f"{s['seconds'] / 3600:>8.3f} {s['samples']:>8}"
        )
    rows.append(f"skipped inputs: {len(index['skipped'])}")
    return "\n".join(rows)
