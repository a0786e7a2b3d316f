"""The engine cache: every built engine has a sidecar JSON manifest, checked before anything is deserialised.

Layout, beside the FP32 ONNX exports of ``onnx_export`` (``<cache_dir>/<model>-<fingerprint[:12]>/``)::

    frame-int8-onnxruntime.onnx     + frame-int8-onnxruntime.json     (Q/DQ graph, run by ONNX Runtime)
    frame-fp16-onnxruntime.onnx     + ...json                         (FP16 graph, FP32 inputs/outputs)
    frame-fp16-tensorrt.engine      + frame-fp16-tensorrt.json        (serialised TensorRT engine)

The manifest holds the ONNX sha256 the engine was built from, the precision, the input/output specs,
the builder and its version, the GPU name and compute capability (TensorRT), the build configuration
and the build time, and the engine file's own sha256. :func:`check_engine` refuses, with one line and
the ``speech2vid build`` command that fixes it, an engine that is

* **missing**: no engine file or no manifest (never built, or a build was interrupted);
* **corrupt**: an unreadable manifest, or an engine file whose sha256/size differ from its manifest;
* **foreign**: built for another model or weights, another TensorRT version, or another GPU;
* **stale**: built from an ONNX export that is no longer the current one (the model was re-exported).

Engine files are opaque (a TensorRT plan is deserialised by native code): hashing them against their
manifest before loading is what keeps a truncated or swapped file from reaching the deserialiser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from speech2vid.build_engines.onnx_export import (
    _spec_json,
    cache_folder,
    cached_graph,
)
from speech2vid.errors import EngineError
from speech2vid.files import sha256_file, write_json_atomic
from speech2vid.model.io_spec import graph_specs
from speech2vid.model.weights import LoadedModel

ENGINE_FORMAT = "speech2vid-engine-1"
EXTENSIONS = {"onnxruntime": ".onnx", "tensorrt": ".engine"}
MISSING, CORRUPT, FOREIGN, STALE = "missing", "corrupt", "foreign", "stale"


class EngineRefused(EngineError):
    """An engine the manifest check refused; ``kind`` is missing, corrupt, foreign or stale."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class EngineEntry:
    """Where one built engine lives in the cache, and what identifies it."""

    graph: str
    backend: str
    precision: str
    model: str
    fingerprint: str
    path: Path
    manifest_path: Path

    def describe(self) -> str:
        return f"{self.model} {self.graph} graph, {self.precision} {self.backend} engine"


def engine_entry(loaded: LoadedModel, graph: str, backend: str, precision: str, cache_dir: str | Path) -> EngineEntry:
    if backend not in EXTENSIONS:
        raise EngineError(f"no engine files for backend '{backend}': choose one of {', '.join(EXTENSIONS)}")
    folder = cache_folder(loaded, cache_dir)
    stem = f"{graph}-{precision}-{backend}"
    return EngineEntry(
        graph, backend, precision, loaded.model.cfg.name, loaded.fingerprint,
        folder / f"{stem}{EXTENSIONS[backend]}", folder / f"{stem}.json",
    )  # fmt: skip


def build_command(model: str, precision: str, backend: str, weights: str | None = None) -> str:
    """The command line that (re)builds an engine; part of every refusal."""
    cmd = f"speech2vid build --model {model} --precision {precision} --backend {backend}"
    if weights is not None:
        cmd += f" --weights {weights}"
    return cmd


def source_onnx_sha256(loaded: LoadedModel, graph: str, opset: int, cache_dir: str | Path) -> str | None:
    """The sha256 of the current FP32 ONNX export of ``graph``, from its manifest; None when there is none.

    The export's own manifest is trusted here (``onnx_export`` hashed the file when it wrote it, and
    re-hashes it before reusing it for a build): opening an engine should not re-read a 100 MB ONNX file.
    """
    entry = cached_graph(loaded, graph, opset, cache_dir)
    try:
        manifest = json.loads(entry.manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or not entry.onnx_path.is_file():
        return None
    if any(manifest.get(k) != v for k, v in entry.expected.items()):
        return None
    sha = manifest.get("sha256")
    return sha if isinstance(sha, str) else None


def expected_fields(loaded: LoadedModel, entry: EngineEntry) -> dict[str, Any]:
    """The manifest fields that identify the engine (everything but hashes, timings and environment)."""
    return {
        "format": ENGINE_FORMAT,
        "graph": entry.graph,
        "model": entry.model,
        "fingerprint": entry.fingerprint,
        "backend": entry.backend,
        "precision": entry.precision,
        **_spec_json(graph_specs(loaded.model.cfg)[entry.graph]),
    }


def write_engine_manifest(
    loaded: LoadedModel,
    entry: EngineEntry,
    *,
    source_sha256: str,
    builder: Mapping[str, str],
    config: Mapping[str, Any],
    build_seconds: float,
    environment: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the sidecar JSON of a finished engine file (atomically: temp + rename) and return it."""
    manifest = {
        **expected_fields(loaded, entry),
        "weights": loaded.source,
        "random_weights": loaded.is_random,
        "source_onnx_sha256": source_sha256,
        "builder": dict(builder),
        "environment": dict(environment or {}),  # TensorRT: version, GPU name, compute capability
        "config": dict(config),
        "recipe": dict(recipe or {}),  # the build settings the engine's bytes depend on (build.recipe)
        "build_seconds": round(build_seconds, 3),
        "file": entry.path.name,
        "sha256": sha256_file(entry.path),
        "size_bytes": entry.path.stat().st_size,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(entry.manifest_path, manifest)
    return manifest


def check_engine(
    loaded: LoadedModel,
    entry: EngineEntry,
    *,
    source_sha256: str | None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The engine's manifest, or :class:`EngineRefused` (one line + the fixing command).

    ``source_sha256`` is the current FP32 ONNX export's sha256 (None: there is none, so the engine is
    stale by definition); ``environment`` the fields that must equal the running machine's (TensorRT
    version, GPU name, compute capability), compared with the manifest's ``environment``.
    """
    fix = build_command(entry.model, entry.precision, entry.backend, loaded.source)

    def refuse(kind: str, why: str) -> EngineRefused:
        return EngineRefused(kind, f"{kind} engine {entry.path}: {why}; rebuild it with `{fix}`")

    if not entry.path.is_file():
        raise refuse(MISSING, f"the {entry.describe()} has not been built")
    if not entry.manifest_path.is_file():
        raise refuse(MISSING, "it has no manifest beside it (an interrupted build, or copied without its .json)")
    try:
        manifest = json.loads(entry.manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise refuse(CORRUPT, f"its manifest {entry.manifest_path.name} is not readable JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ENGINE_FORMAT:
        raise refuse(CORRUPT, f"its manifest {entry.manifest_path.name} is not a {ENGINE_FORMAT} manifest")
    for key in ("model", "fingerprint", "graph", "backend", "precision"):
        if manifest.get(key) != getattr(entry, key):
            built_for = str(manifest.get(key))[:16]
            raise refuse(FOREIGN, f"it was built for {key} '{built_for}', this run needs '{str(getattr(entry, key))[:16]}'")
    got_env = manifest.get("environment")
    for key, want in (environment or {}).items():
        got = got_env.get(key) if isinstance(got_env, dict) else None
        if got != want:
            raise refuse(FOREIGN, f"it was built with {key} {got!r}, this machine has {want!r}")
    expected = expected_fields(loaded, entry)
    for key in ("inputs", "outputs"):
        if manifest.get(key) != expected[key]:
            raise refuse(STALE, f"its {key} differ from the model's tensors")
    if source_sha256 is None:
        raise refuse(STALE, "the FP32 ONNX export it was built from is gone or no longer matches the model")
    if manifest.get("source_onnx_sha256") != source_sha256:
        raise refuse(STALE, "the FP32 ONNX export changed since it was built")
    size = entry.path.stat().st_size
    if manifest.get("size_bytes") != size or manifest.get("sha256") != sha256_file(entry.path):
        raise refuse(CORRUPT, "the file's size or sha256 differs from its manifest (truncated or modified)")
    return manifest
