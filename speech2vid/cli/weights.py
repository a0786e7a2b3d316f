"""``import-matconvnet``, ``pack-weights`` and ``pack-mediapipe``: model files, made."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from speech2vid.cli.options import check_outputs, settings_from
from speech2vid.errors import UserError


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "import-matconvnet",
        cmd_import_matconvnet,
        "convert the authors' MatConvNet weights (v201.mat generator, v114.mat deblurrer) to safetensors",
    )
    p.add_argument("files", nargs="+", metavar="FILE.mat", help="generator file, optionally followed by the deblurrer")
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors", help="weights file to write")
    p.add_argument("--model", help="geometry the file must match (default paper)")

    p = add(
        "pack-weights",
        cmd_pack_weights,
        "trained weights -> the file that ships (FP16, checked against FP32, or --fp32)",
    )
    p.add_argument(
        "weights", metavar="IN.safetensors", help="trained weights (e.g. runs/lite/last/weights.safetensors)"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.safetensors", help="weights file to write")
    p.add_argument("--model", help="geometry of the weights: lite (default), paper, or a model YAML")
    p.add_argument(
        "--fp32", action="store_true", help="keep FP32 (the bundled lite: FP16 rounding moves its warped frames)"
    )
    p.add_argument(
        "--meta", action="append", default=[], metavar="KEY=VALUE", help="extra metadata to record (repeatable)"
    )

    p = add("pack-mediapipe", cmd_pack_mediapipe, "MediaPipe's TFLite face models -> ONNX for ONNX Runtime")
    p.add_argument("models", nargs="+", metavar="MODEL.tflite", help="e.g. data/mediapipe/face_landmark.tflite")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder for MODEL.onnx (one per model; the runtime's: assets/faces)",
    )


def cmd_import_matconvnet(args: argparse.Namespace) -> int:
    from speech2vid.model.matconvnet import import_to_file

    check_outputs([("-o", args.output)], list(args.files), (".safetensors",))
    print(import_to_file(args.files, args.output, args.model or "paper"))
    return 0


def cmd_pack_weights(args: argparse.Namespace) -> int:
    from speech2vid.config import load_model_config
    from speech2vid.model.pack import pack_weights

    check_outputs([("-o", args.output)], [args.weights], (".safetensors",))
    extra = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--meta '{item}' is not KEY=VALUE")
        extra[key] = value
    cfg = load_model_config(settings_from(args).model)
    print(pack_weights(args.weights, args.output, cfg, extra, half=not args.fp32))
    return 0


def cmd_pack_mediapipe(args: argparse.Namespace) -> int:
    import onnx

    from speech2vid.faces.tflite_onnx import tflite_to_onnx
    from speech2vid.files import atomic_path

    folder = Path(args.output).expanduser()
    if not folder.is_dir():
        raise UserError(f"-o {folder} is not a folder: create it first")
    written = [str(folder / Path(m).with_suffix(".onnx").name) for m in args.models]
    outputs: list[tuple[str, str | None]] = [(f"-o {out}", out) for out in written]
    check_outputs(outputs, list(args.models), (".onnx",))
    graphs = [tflite_to_onnx(model) for model in args.models]  # every model converts before anything is written
    for model, graph, out in zip(args.models, graphs, written):
        with atomic_path(out, ".onnx") as tmp:
            onnx.save(graph, str(tmp))
        print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB) from {model}")
    return 0
