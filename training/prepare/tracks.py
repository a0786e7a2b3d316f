"""Link per-frame face detections into tracks within a shot (greedy IoU matching), bridging short misses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from speech2vid.faces.boxes import iou as boxes_iou


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(left, top, right, bottom)`` boxes."""
    return float(boxes_iou(np.asarray(a, np.float64), np.asarray(b, np.float64)[None])[0])


@dataclass
class FaceTrack:
    """Frames (consecutive, after bridging) and a box ``(left, top, right, bottom)`` per frame."""

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        """One past the last frame."""
        return self.frames[-1] + 1

    def __len__(self) -> int:
        return len(self.frames)


def link_detections(
    detections: dict[int, list[np.ndarray]],
    shots: list[tuple[int, int]],
    *,
    min_iou: float = 0.3,
    max_gap: int = 3,
    min_length: int = 1,
) -> list[FaceTrack]:
    """Tracks of faces, never across a shot boundary.

    Args:
        detections: frame -> boxes found in it.
        shots: ``[start, end)`` frame ranges (:func:`speech2vid.training.prepare.shots.shot_boundaries`).
        min_iou: a detection continues a track when its IoU with the track's last box is at least this.
        max_gap: a track missing for up to this many frames is continued, the gap filled by linear
            interpolation of the boxes; after a longer miss it ends.
        min_length: shorter tracks are dropped.

    Returns:
        Tracks sorted by start frame, then by first box's left edge.
    """
    done: list[FaceTrack] = []
    for start, end in shots:
        active: list[FaceTrack] = []
        for f in range(start, end):
            boxes = list(detections.get(f, []))
            # Greedy matching, best overlaps first.
            pairs = sorted(
                ((iou(t.boxes[-1], b), ti, bi) for ti, t in enumerate(active) for bi, b in enumerate(boxes)),
                reverse=True,
            )
            used_t: set[int] = set()
            used_b: set[int] = set()
            for score, ti, bi in pairs:
                if score < min_iou or ti in used_t or bi in used_b:
                    continue
                used_t.add(ti)
                used_b.add(bi)
                t, b = active[ti], np.asarray(boxes[bi], dtype=np.float64)
                gap = f - t.frames[-1]
                for g in range(1, gap):  # bridge a short miss
                    t.frames.append(t.frames[-1] + 1)
                    t.boxes.append(t.boxes[-1] + (b - t.boxes[-1]) * (1.0 / (gap - g + 1)))
                t.frames.append(f)
                t.boxes.append(b)
            for bi, b in enumerate(boxes):
                if bi not in used_b:
                    active.append(FaceTrack([f], [np.asarray(b, dtype=np.float64)]))
            still: list[FaceTrack] = []
            for t in active:
                (still if f - t.frames[-1] <= max_gap else done).append(t)
            active = still
        done.extend(active)
    kept = [t for t in done if len(t) >= min_length]
    return sorted(kept, key=lambda t: (t.start, float(t.boxes[0][0])))
