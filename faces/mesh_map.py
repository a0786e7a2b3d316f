"""From FaceMesh's 468 points to the 68-point scheme the project uses (registration, the mouth model,
the training templates), and how the map was made: ``python -m speech2vid.faces.mesh_map``.

Each of the 68 points is a fixed weighted sum of its :data:`NEIGHBOURS` nearest mesh vertices (weights
summing to 1), fitted by least squares to dlib's points on the training photos (data/train_photos; the
evaluation photos are never used), each photo's points centred between the eyes and scaled by the
inter-ocular distance so that every photo counts alike. The two schemes agree on the eyes, nose and
mouth; dlib's jaw runs along the silhouette and its brows along their upper edge, which the mesh draws
elsewhere: weights, not one vertex, carry those over. The map is stored in ``mesh_to_68.json`` beside
this file; tests/test_mediapipe_faces.py measures it on the evaluation photos.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from speech2vid.faces.ibug68 import LEFT_EYE, RIGHT_EYE

MAP_FILE = Path(__file__).with_name("mesh_to_68.json")
NEIGHBOURS = 4


def normalised(points: np.ndarray, eyes_from: np.ndarray) -> np.ndarray:
    """``points`` centred between the eyes of ``eyes_from`` (68 points) and divided by their distance."""
    right, left = eyes_from[list(RIGHT_EYE)].mean(axis=0), eyes_from[list(LEFT_EYE)].mean(axis=0)
    return np.asarray((points - (right + left) / 2) / np.linalg.norm(left - right))


def fit(meshes: np.ndarray, dlib68: np.ndarray, neighbours: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """(indices (68, k), weights (68, k)) from ``meshes`` (n, 468, 2) and ``dlib68`` (n, 68, 2) of the same
    faces: the k vertices nearest each point on average, weighted to sum to 1 by least squares."""
    m = np.stack([normalised(a, b) for a, b in zip(meshes, dlib68)])
    d = np.stack([normalised(b, b) for b in dlib68])
    mean_distance = np.linalg.norm(m[:, None, :, :] - d[:, :, None, :], axis=3).mean(axis=0)  # (68, 468)
    indices = np.argsort(mean_distance, axis=1)[:, :neighbours]
    weights = np.zeros(indices.shape)
    for j, idx in enumerate(indices):
        # w_last = 1 - sum(others): solve for the others on x and y of every photo at once
        last = m[:, idx[-1], :]
        a = np.stack([m[:, i, :] - last for i in idx[:-1]], axis=-1).reshape(-1, neighbours - 1)
        b = (d[:, j, :] - last).reshape(-1)
        w, *_ = np.linalg.lstsq(a, b, rcond=None)
        weights[j] = np.append(w, 1.0 - w.sum())
    return indices, weights


def apply(mesh: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(68, 2) points of the 68-point scheme from FaceMesh's (468, >=2) points."""
    return np.asarray(np.einsum("jk,jkc->jc", weights, mesh[indices, :2]))


@lru_cache(maxsize=1)
def shipped_map() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(MAP_FILE.read_text(encoding="utf-8"))
    return np.array(data["indices"], dtype=np.int64), np.array(data["weights"], dtype=np.float64)


def to_68(mesh: np.ndarray) -> np.ndarray:
    """The 68 points of FaceMesh's 468, by the shipped map."""
    return apply(mesh, *shipped_map())


def main() -> None:  # pragma: no cover - run by hand; its result is the JSON file
    import onnx

    from speech2vid.faces import align_image, read_photo
    from speech2vid.faces.mediapipe import detect_faces, face_mesh
    from speech2vid.faces.tflite_onnx import tflite_to_onnx

    root = Path(__file__).resolve().parents[1]
    graphs = {}
    for name in ("face_detection_short_range", "face_landmark"):
        graphs[name] = root / "build" / f"{name}.onnx"
        graphs[name].parent.mkdir(exist_ok=True)
        onnx.save(tflite_to_onnx(root / "data" / "mediapipe" / f"{name}.tflite"), str(graphs[name]))
    meshes, dlibs = [], []
    for photo in sorted((root / "data" / "train_photos").glob("*.jpg")):
        rgb = read_photo(photo)
        faces = detect_faces(rgb, graphs["face_detection_short_range"])
        try:
            landmarks = align_image(rgb).landmarks
        except Exception:  # a photo dlib does not find a face in: not a pair
            continue
        if len(faces) != 1 or landmarks is None:
            continue
        mesh, score = face_mesh(rgb, faces[0], graphs["face_landmark"])
        if score > 0.9:
            meshes.append(mesh[:, :2])
            dlibs.append(landmarks)
    indices, weights = fit(np.stack(meshes), np.stack(dlibs))
    MAP_FILE.write_text(
        json.dumps(
            {
                "photos": len(meshes),
                "neighbours": NEIGHBOURS,
                "indices": indices.tolist(),
                "weights": np.round(weights, 6).tolist(),
            }
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {MAP_FILE} from {len(meshes)} training photos")


if __name__ == "__main__":  # pragma: no cover
    main()
