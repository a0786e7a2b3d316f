"""MediaPipe's face detector (BlazeFace, short range) and face mesh (468 points), run by ONNX Runtime.

The graphs are MediaPipe's own models converted by :mod:`speech2vid.faces.tflite_onnx`; the pre- and
post-processing follow MediaPipe's published graphs (``mediapipe/modules/face_detection`` and
``face_landmark``, 0.10.14):

* detection: the photo letterboxed into 128x128 in [-1, 1]; 896 SSD anchors (strides 8, 16, 16, 16, two
  anchors per layer, fixed size); boxes and six keypoints decoded with scale 128; a sigmoid score clipped at
  100; weighted non-max suppression at IoU 0.3; the letterbox removed;
* mesh: the face's region from the detection (centre of the box, rotated so that the eyes are level,
  1.5x the box, square), cut out at 192x192 in [0, 1]; the 468 points mapped back into the photo.

``faces.detect`` and ``faces.landmarks`` give the runtime these models through the project's own types;
tests/test_mediapipe_faces.py checks them against dlib's detector and landmarks on real photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from speech2vid.faces.boxes import iou

MESH_SIDE = 192
NMS_IOU = 0.3
ROI_SCALE = 1.5
SCORE_CLIP = 100.0
N_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
N_MESH = 468
# ONNX Runtime threads per face model: two halve FaceMesh's 7 ms on this project's 2-core CPU, and a video's
# tracker runs on a thread of its own beside the blending (runtime/prefetch.py)
MODEL_THREADS = 1


@dataclass(frozen=True)
class FaceDetection:
    """A face in photo pixels: its box (x0, y0, x1, y1), six keypoints (6, 2) and score in [0, 1]."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


@dataclass(frozen=True)
class DetectorSpec:
    """A BlazeFace variant as MediaPipe's graph configures it."""

    name: str  # the model's file name in MediaPipe's wheel and in assets/faces, without the suffix
    side: int  # input square (px)
    grids: tuple[tuple[int, int], ...]  # (stride, anchors per cell) of each grid
    min_score: float


# face_detection_short_range.pbtxt: 4 layers at strides 8, 16, 16, 16, two anchors a layer (aspect 1 and the
# interpolated one); face_detection_full_range.pbtxt: one layer at stride 4, one anchor (no interpolated one)
SHORT_RANGE = DetectorSpec("face_detection_short_range", 128, ((8, 2), (16, 6)), 0.5)
FULL_RANGE = DetectorSpec("face_detection_full_range_sparse", 192, ((4, 1),), 0.6)


def anchors(spec: DetectorSpec = SHORT_RANGE) -> np.ndarray:
    """(n, 2) anchor centres in [0, 1] (MediaPipe's SsdAnchorsCalculator, offsets 0.5, fixed anchor size:
    layers of one stride share a grid): 896 for short range, 2304 for full range."""
    out = []
    for stride, per_cell in spec.grids:
        cells = spec.side // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def letterbox(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """``rgb`` scaled to fit ``side`` x ``side`` keeping its aspect, centred on black: (image, scale, (left,
    top) padding in pixels of the square)."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    left, top = (side - nw) / 2, (side - nh) / 2
    out = np.zeros((side, side, 3), np.uint8)
    out[int(top) : int(top) + nh, int(left) : int(left) + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, scale, (float(int(left)), float(int(top)))


def decode(
    regressors: np.ndarray, logits: np.ndarray, anchor_xy: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (n, 4) as x0 y0 x1 y1, keypoints (n, 6, 2), scores (n,)) in [0, 1] of the detector's input, for
    the raw outputs (n, 16) and (n,), which are pixels of the ``side`` input relative to each anchor."""
    raw = regressors.astype(np.float64) / side
    centre = raw[:, :2] + anchor_xy
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, N_KEYPOINTS, 2) + anchor_xy[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    return boxes, keypoints, scores


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, min_score: float = SHORT_RANGE.min_score
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: the best candidate and every other overlapping it by more
    than :data:`NMS_IOU` merge into one detection, their boxes and keypoints averaged by score."""
    order = [int(i) for i in np.argsort(-scores) if scores[i] >= min_score]
    out = []
    while order:
        overlap = iou(boxes[order[0]], boxes[order])
        cluster = [order[j] for j in range(len(order)) if overlap[j] > NMS_IOU]
        weights = scores[cluster][:, None]
        merged_box = (boxes[cluster] * weights).sum(0) / weights.sum()
        merged_kp = (keypoints[cluster] * weights[:, :, None]).sum(0) / weights.sum()
        out.append((merged_box, merged_kp, float(scores[order[0]])))
        order = [i for j, i in enumerate(order) if overlap[j] <= NMS_IOU]
    return out


@lru_cache(maxsize=None)
def _session(path: str) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = MODEL_THREADS
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_detector(rgb: np.ndarray, detector: Path) -> list[FaceDetection]:
    """Every face BlazeFace finds in ``rgb`` (H, W, 3 uint8), best first, in photo pixels; ``detector`` is the
    short- or the full-range graph (told apart by their input size)."""
    session = _session(str(detector))
    side = int(session.get_inputs()[0].shape[1])  # type: ignore[attr-defined]
    spec = SHORT_RANGE if side == SHORT_RANGE.side else FULL_RANGE
    square, scale, (left, top) = letterbox(rgb, spec.side)
    x = (square.astype(np.float32) / 127.5 - 1.0)[None]
    regressors, logits = session.run(None, {session.get_inputs()[0].name: x})  # type: ignore[attr-defined]
    boxes, keypoints, scores = decode(regressors[0], logits[0, :, 0], anchors(spec).astype(np.float64), spec.side)
    offset = np.array([left, top])

    def to_photo(p: np.ndarray) -> np.ndarray:  # [0, 1] of the letterboxed square -> photo pixels
        return np.asarray((p * spec.side - offset) / scale)

    found = weighted_nms(boxes, keypoints, scores, spec.min_score)
    return [FaceDetection(to_photo(box.reshape(2, 2)).ravel(), to_photo(kp), score) for box, kp, score in found]


def roi_transform(centre: np.ndarray, side: float, angle: float) -> np.ndarray:
    """The 2x3 affine from the crop's pixels (0..MESH_SIDE) to the photo's."""
    c, s = math.cos(angle), math.sin(angle)
    k = side / MESH_SIDE
    rot = np.array([[c * k, -s * k], [s * k, c * k]])
    return np.hstack([rot, (centre - rot @ [MESH_SIDE / 2, MESH_SIDE / 2])[:, None]])


def face_mesh(rgb: np.ndarray, roi: tuple[np.ndarray, float, float], mesh: Path) -> tuple[np.ndarray, float]:
    """(468, 3) mesh points of the face in ``roi`` (centre, side, angle: ``faces.detect.mesh_region``) (x, y in photo
    pixels; z in the same scale) and FaceMesh's face score in [0, 1] (MediaPipe tracks while it is >= 0.5)."""
    affine = roi_transform(*roi)
    crop = cv2.warpAffine(
        rgb,
        affine,
        (MESH_SIDE, MESH_SIDE),
        flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
    )
    session = _session(str(mesh))
    points, flag = session.run(None, {session.get_inputs()[0].name: (crop.astype(np.float32) / 255.0)[None]})  # type: ignore[attr-defined]
    pts = points.reshape(N_MESH, 3).astype(np.float64)
    xy = pts[:, :2] @ affine[:, :2].T + affine[:, 2]
    score = 1 / (1 + math.exp(-float(flag.ravel()[0])))
    return np.concatenate([xy, pts[:, 2:] * math.hypot(*affine[0, :2])], axis=1), score
