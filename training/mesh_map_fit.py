"""Fit the FaceMesh -> 68-point map (:mod:`speech2vid.faces.mesh_map`): ``python -m speech2vid.training.mesh_map_fit``.

The target is dlib's original 68-point model (the evaluation's instrument) on the training photos
(data/train_photos) and their mirror images; the evaluation photos are never used. Each photo's points are
centred between dlib's eyes and scaled by their distance so that every photo counts alike; each point's
weights are the least-squares solution over all photos (with a tiny ridge, since near vertices are almost
collinear). Writes faces/mesh_to_68.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from speech2vid.faces.ibug68 import LEFT_EYE, N_LANDMARKS, RIGHT_EYE
from speech2vid.faces.mesh_map import MAP_FILE, NEIGHBOURS, offsets

RIDGE = 1e-6  # relative to the number of equations
MIN_MESH_SCORE = 0.9  # FaceMesh's face score below which a photo is not a clean pair


def normalised(points: np.ndarray, eyes_from: np.ndarray) -> np.ndarray:
    """``points`` centred between the eyes of ``eyes_from`` (68 points) and divided by their distance."""
    right, left = eyes_from[list(RIGHT_EYE)].mean(axis=0), eyes_from[list(LEFT_EYE)].mean(axis=0)
    return np.asarray((points - (right + left) / 2) / np.linalg.norm(left - right))


def fit(meshes: np.ndarray, dlib68: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchors (68,), neighbours (68, k-1), weights (68, 2(k-1))) from ``meshes`` (n, 468, >=2) and ``dlib68``
    (n, 68, 2) of the same faces."""
    m = np.stack([np.concatenate([normalised(a[:, :2], b), a[:, 2:]], axis=1) for a, b in zip(meshes, dlib68)])
    d = np.stack([normalised(b, b) for b in dlib68])
    mean_distance = np.linalg.norm(m[:, None, :, :2] - d[:, :, None, :], axis=3).mean(axis=0)  # (68, 468)
    order = np.argsort(mean_distance, axis=1)
    anchors, neighbours = order[:, 0], order[:, 1:k]
    feats = offsets(m, anchors, neighbours)  # (n, 68, 2(k-1), 2)
    weights = np.zeros((N_LANDMARKS, feats.shape[2]))
    for j in range(N_LANDMARKS):
        a = feats[:, j].transpose(0, 2, 1).reshape(-1, feats.shape[2])
        b = (d[:, j] - m[:, anchors[j], :2]).reshape(-1)
        weights[j] = np.linalg.solve(a.T @ a + RIDGE * len(a) * np.eye(a.shape[1]), a.T @ b)
    return anchors, neighbours, weights


def pairs(folder: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(mesh (468, 3), dlib's 68 points) of every photo in ``folder`` and of its mirror image, where both models
    find exactly one face."""
    from speech2vid.assets import face_mesh_graph
    from speech2vid.faces import detect_faces, read_photo
    from speech2vid.faces.detect import mesh_region
    from speech2vid.faces.mediapipe import face_mesh
    from speech2vid.training.evaluation.dlib_models import dlib_landmarks_68, hog_faces

    for photo in sorted(folder.glob("*.jpg")):
        rgb = read_photo(photo)
        for image in (rgb, np.ascontiguousarray(rgb[:, ::-1])):
            boxes, hog = detect_faces(image), hog_faces(image)
            if len(boxes) != 1 or len(hog) != 1:
                continue
            mesh, score = face_mesh(image, mesh_region(boxes[0]), face_mesh_graph())
            if score >= MIN_MESH_SCORE:
                yield mesh, dlib_landmarks_68(image, hog[0])


def main() -> None:  # pragma: no cover - run by hand; its result is the JSON file
    root = Path(__file__).resolve().parents[1]
    meshes, dlibs = zip(*pairs(root / "data" / "train_photos"))
    anchors, neighbours, weights = fit(np.stack(meshes), np.stack(dlibs))
    record = {
        "pairs": len(meshes),
        "neighbours": NEIGHBOURS,
        "anchors": anchors.tolist(),
        "neighbours_of": neighbours.tolist(),
        "weights": np.round(weights, 6).tolist(),
    }
    MAP_FILE.write_text(json.dumps(record) + "\n", encoding="utf-8")
    print(f"wrote {MAP_FILE} from {len(meshes)} photos and mirror images")


if __name__ == "__main__":  # pragma: no cover
    main()
