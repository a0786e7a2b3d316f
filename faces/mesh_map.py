"""From FaceMesh's 468 points to the 68-point scheme the project uses (registration, the mouth model,
the training templates). How the map is made: :mod:`speech2vid.training.mesh_map_fit`.

Each of the 68 points is its nearest mesh vertex (on average) moved by a weighted sum of the offsets to
the next :data:`NEIGHBOURS` - 1 nearest vertices. Each weight is linear in the head's turn (:func:`yaw`),
because dlib's jaw runs along the face's silhouette, which crosses other mesh vertices as the head turns.
Weights are scalars applied to x and y alike, so the map commutes with moving, scaling and rotating the
face. The map is stored in ``mesh_to_68.json`` beside this file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

MAP_FILE = Path(__file__).with_name("mesh_to_68.json")
NEIGHBOURS = 24
# FaceMesh vertices: the nose tip and the face oval's ends at the cheeks, on the subject's right and left
NOSE_TIP, RIGHT_CHEEK, LEFT_CHEEK = 1, 234, 454


def yaw(mesh: np.ndarray) -> np.ndarray:
    """The head's turn from ``mesh`` (..., 468, >=2): the nose tip's place between the cheeks' ends, in
    [-1, 1] (0: frontal; about +-0.4 at 45 degrees)."""
    right, left, nose = mesh[..., RIGHT_CHEEK, :2], mesh[..., LEFT_CHEEK, :2], mesh[..., NOSE_TIP, :2]
    span = left - right
    return np.asarray(((nose - right) * span).sum(-1) / (span * span).sum(-1) * 2.0 - 1.0)


def offsets(mesh: np.ndarray, anchors: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """(..., 68, 2 * (k - 1), 2) features of ``mesh`` (..., 468, >=2): each point's offsets from its anchor
    vertex to its other vertices, and the same scaled by the yaw."""
    pts = mesh[..., :2]
    base = pts[..., neighbours, :] - pts[..., anchors, None, :]  # (..., 68, k-1, 2)
    turn = yaw(mesh)[..., None, None, None]
    return np.concatenate([base, base * turn], axis=-2)


def apply(mesh: np.ndarray, anchors: np.ndarray, neighbours: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., 68, 2) points of the 68-point scheme from FaceMesh's (..., 468, >=2) points."""
    feats = offsets(mesh, anchors, neighbours)
    return np.asarray(mesh[..., anchors, :2] + np.einsum("...jfc,jf->...jc", feats, weights))


@lru_cache(maxsize=1)
def shipped_map() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = json.loads(MAP_FILE.read_text(encoding="utf-8"))
    return (
        np.array(data["anchors"], dtype=np.int64),
        np.array(data["neighbours_of"], dtype=np.int64),
        np.array(data["weights"], dtype=np.float64),
    )


def to_68(mesh: np.ndarray) -> np.ndarray:
    """The 68 points of FaceMesh's 468, by the shipped map."""
    return apply(mesh, *shipped_map())
