"""faces/tflite_onnx.py against the TFLite interpreter itself (ai-edge-litert, Google's runtime for these
files), on MediaPipe's BlazeFace and FaceMesh as the mediapipe 0.10.14 wheel ships them (data/mediapipe/):
random inputs, and a real photo, on which the converted detector must also find the face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from speech2vid.faces.tflite_onnx import ConversionError, same_pads, tflite_to_onnx

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "data" / "mediapipe"
pytest.importorskip("tflite")
litert = pytest.importorskip("ai_edge_litert.interpreter")


def run_both(model: Path, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(TFLite's outputs, the converted ONNX graph's) for the NHWC input ``x``."""
    interpreter = litert.Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    names = [d["name"] for d in interpreter.get_output_details()]
    reference = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    session = ort.InferenceSession(tflite_to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return reference, session.run(names, {session.get_inputs()[0].name: x})


def photo_input(side: int, lo: float) -> np.ndarray:
    """The sample photo, squashed to ``side`` x ``side``, scaled to [lo, 1]: (1, side, side, 3) float32."""
    import cv2

    from speech2vid.assets import sample_face
    from speech2vid.faces import read_photo

    rgb = cv2.resize(read_photo(sample_face()), (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (lo + rgb / 255.0 * (1.0 - lo))[None]


@pytest.mark.parametrize(
    ("name", "side", "lo"),
    [
        ("face_detection_short_range", 128, -1.0),
        ("face_detection_full_range_sparse", 192, -1.0),  # sparse (DENSIFY) weights, resizes, depth-to-space
        ("face_landmark", 192, 0.0),
    ],
)
def test_the_converted_graph_computes_what_tflite_computes(name: str, side: int, lo: float) -> None:
    model = MODELS / f"{name}.tflite"
    rng = np.random.default_rng(0)
    for x in (rng.uniform(lo, 1.0, (1, side, side, 3)).astype(np.float32), photo_input(side, lo)):
        reference, converted = run_both(model, x)
        assert [r.shape for r in reference] == [c.shape for c in converted]
        for r, c in zip(reference, converted):
            assert np.abs(r - c).max() <= 1e-4 * max(1.0, float(np.abs(r).max())), name


def face_crop(side: int) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh's input: a square around the sample face (its 68 points' box, 1.5x), ``side`` px, in [0, 1];
    and those 68 points in the crop's pixels."""
    import cv2

    from speech2vid.assets import sample_face
    from speech2vid.faces import align_image, read_photo

    rgb = read_photo(sample_face())
    points = align_image(rgb).landmarks
    assert points is not None
    centre, half = (points.min(0) + points.max(0)) / 2, (points.max(0) - points.min(0)).max() * 0.75
    x0, y0 = (centre - half).astype(int)
    crop = rgb[y0 : y0 + int(2 * half), x0 : x0 + int(2 * half)]
    scale = side / crop.shape[0]
    image = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return image[None], (points - [x0, y0]) * scale


def test_the_converted_detector_finds_the_face_and_the_mesh_lands_on_it() -> None:
    _, (_, scores) = run_both(MODELS / "face_detection_short_range.tflite", photo_input(128, -1.0))
    assert 1 / (1 + np.exp(-scores.max())) > 0.9  # BlazeFace's logit: a face, with confidence
    x, dlib68 = face_crop(192)
    _, (mesh, flag) = run_both(MODELS / "face_landmark.tflite", x)
    points = mesh.reshape(468, 3)[:, :2]
    assert 1 / (1 + np.exp(-flag.item())) > 0.9  # "a face is here"
    # the mesh covers the face dlib found: its box within 10% of the face's size of dlib's 68 points' box
    size = float((dlib68.max(0) - dlib68.min(0)).max())
    assert (
        np.abs(points.min(0)[0] - dlib68.min(0)[0]) < 0.1 * size
        and np.abs(points.max(0)[0] - dlib68.max(0)[0]) < 0.1 * size
    )


def test_same_padding_puts_the_odd_pixel_after() -> None:
    assert same_pads((128, 128), (5, 5), (2, 2), (1, 1)) == [1, 1, 2, 2]  # out 64: total 3
    assert same_pads((64, 64), (3, 3), (1, 1), (1, 1)) == [1, 1, 1, 1]
    assert same_pads((16, 16), (2, 2), (2, 2), (1, 1)) == [0, 0, 0, 0]


def test_a_file_that_is_not_tflite_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ConversionError, match="not a TFLite model"):
        tflite_to_onnx(bad)


def test_pack_mediapipe_writes_the_graphs_or_one_line_and_nothing(tmp_path: Path) -> None:
    from speech2vid.cli import main

    models = [str(MODELS / "face_detection_short_range.tflite"), str(MODELS / "face_landmark.tflite")]
    bad = tmp_path / "not.tflite"
    bad.write_bytes(b"\x00" * 64)
    assert main(["-q", "pack-mediapipe", *models, str(bad), "-o", str(tmp_path)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not.tflite"]  # nothing half done
    assert main(["-q", "pack-mediapipe", *models, "-o", str(tmp_path)]) == 0
    x = photo_input(128, -1.0)
    session = ort.InferenceSession(
        str(tmp_path / "face_detection_short_range.onnx"), providers=["CPUExecutionProvider"]
    )
    reference, _ = run_both(MODELS / "face_detection_short_range.tflite", x)
    written = session.run(["regressors", "classificators"], {"input": x})
    assert all(np.abs(r - w).max() <= 1e-4 * max(1.0, float(np.abs(r).max())) for r, w in zip(reference, written))
