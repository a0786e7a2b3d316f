"""``speech2vid eval --faces DIR``: the share of real faces the runtime's detector finds, beside dlib's HOG.

The set is a folder of photos and ``faces.tsv`` (data/eval/detection/ is one; docs/data.md says how it was
made): per photo, the centre ``x:y`` of every face a person counted, and which of them lie beyond the scope the
detector is asked to cover (profiles, upside-down). A face is found when a detected box holds its centre; each
box finds one face at most, and boxes that find none are counted as extra (false alarms, or faces nobody
counted).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech2vid.faces import Box, detect_faces, read_photo

SET_FILE = "faces.tsv"
DETECTORS = ("runtime", "hog")  # MediaPipe's BlazeFace as the runtime runs it; dlib's HOG, the old runtime's


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    centres: tuple[tuple[float, float], ...]
    beyond: frozenset[int]  # indices into centres
    categories: tuple[str, ...]


def read_set(folder: Path) -> list[LabelledPhoto]:
    """The photos of ``folder``/faces.tsv; ValueError saying what is wrong with the set."""
    table = folder / SET_FILE
    if not table.is_file():
        raise ValueError(f"{folder} holds no {SET_FILE}: a face set lists each photo's face centres there")
    photos = []
    with table.open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            try:
                centres = tuple((float(x), float(y)) for x, y in (c.split(":") for c in row["centres"].split(",") if c))
                beyond = frozenset(int(i) for i in (row.get("beyond_scope") or "").split(",") if i)
                path = folder / row["file"]
            except (KeyError, ValueError, AttributeError) as exc:
                raise ValueError(f"{table} line {line} is not file<TAB>...<TAB>centres x:y,x:y ({exc})") from None
            if not path.is_file():
                raise ValueError(f"{table} line {line} names {row['file']}, which is not in {folder}")
            if any(not 0 <= i < len(centres) for i in beyond):
                raise ValueError(f"{table} line {line}: beyond_scope names a face it does not list")
            categories = tuple(c for c in (row.get("categories") or "").split(",") if c)
            photos.append(LabelledPhoto(path, centres, beyond, categories))
    if not photos:
        raise ValueError(f"{table} lists no photos")
    return photos


def match(boxes: list[Box], centres: tuple[tuple[float, float], ...]) -> tuple[list[bool], int]:
    """(found per centre, boxes that found none): a box finds the first unfound centre inside it."""
    used: set[int] = set()
    found = []
    for x, y in centres:
        hit = next(
            (k for k, b in enumerate(boxes) if k not in used and b.left <= x <= b.right and b.top <= y <= b.bottom),
            None,
        )
        if hit is not None:
            used.add(hit)
        found.append(hit is not None)
    return found, len(boxes) - len(used)


def _detectors() -> dict[str, Callable[[Any], list[Box]]]:
    from speech2vid.training.evaluation.dlib_models import hog_faces

    return {"runtime": detect_faces, "hog": hog_faces}


def evaluate_detection(folder: Path, progress: bool = False) -> dict[str, Any]:
    """Per photo and in all: faces found by each detector, of all faces and of those within scope."""
    from tqdm import tqdm

    photos = read_set(folder)
    detectors = _detectors()
    rows = []
    for photo in tqdm(photos, desc="photos", unit="photo", disable=not progress):
        rgb = read_photo(photo.path)
        row: dict[str, Any] = {"file": photo.path.name, "faces": len(photo.centres), "categories": photo.categories}
        row["in_scope"] = len(photo.centres) - len(photo.beyond)
        for name, detect in detectors.items():
            start = time.perf_counter()
            boxes = detect(rgb)
            ms = (time.perf_counter() - start) * 1e3
            found, extra = match(boxes, photo.centres)
            row[name] = {
                "found": sum(found),
                "found_in_scope": sum(f for i, f in enumerate(found) if i not in photo.beyond),
                "missed": [i for i, f in enumerate(found) if not f],
                "extra": extra,
                "ms": round(ms, 1),
            }
        rows.append(row)
    total = {
        "faces": sum(r["faces"] for r in rows),
        "in_scope": sum(r["in_scope"] for r in rows),
    }
    for name in detectors:
        total[name] = {
            "found": sum(r[name]["found"] for r in rows),
            "found_in_scope": sum(r[name]["found_in_scope"] for r in rows),
            "extra": sum(r[name]["extra"] for r in rows),
            "median_ms": sorted(r[name]["ms"] for r in rows)[len(rows) // 2],
        }
    categories = sorted({c for r in rows for c in r["categories"]})
    by_category = {
        c: {
            name: [
                sum(r[name]["found_in_scope"] for r in rows if c in r["categories"]),
                sum(r["in_scope"] for r in rows if c in r["categories"]),
            ]
            for name in detectors
        }
        for c in categories
    }
    return {"set": str(folder), "photos": rows, "total": total, "by_category": by_category}


def table(results: dict[str, Any]) -> str:
    """The report for people: totals first, then per category and per photo."""
    t = total = results["total"]
    photos = len(results["photos"])

    def share(found: int, of: int) -> str:
        return f"{found}/{of} ({100.0 * found / of:.1f}%)" if of else "-"

    lines = [
        f"face set {results['set']}: {photos} photos, {t['faces']} faces ({t['in_scope']} within scope)",
        f"{'detector':<10} {'all faces':>16} {'within scope':>16} {'extra boxes':>12} {'median ms':>10}",
    ]
    for name in DETECTORS:
        d = total[name]
        lines.append(
            f"{name:<10} {share(d['found'], t['faces']):>16} {share(d['found_in_scope'], t['in_scope']):>16} "
            f"{d['extra']:>12} {d['median_ms']:>10.1f}"
        )
    lines.append(
        "within scope, per category: "
        + "; ".join(
            f"{c} {v['runtime'][0]}/{v['runtime'][1]} (hog {v['hog'][0]})" for c, v in results["by_category"].items()
        )
    )
    for r in results["photos"]:
        misses = {name: r[name]["missed"] for name in DETECTORS if r[name]["missed"]}
        if misses:
            lines.append(f"  {r['file']}: missed faces " + ", ".join(f"{k} {v}" for k, v in misses.items()))
    return "\n".join(lines)
