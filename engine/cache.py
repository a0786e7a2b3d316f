"""The engine cache: where every engine file lives, its one manifest format, and the checks before use.

This module is the only owner of the layout and the manifests; ``build_engines`` writes through it and
the engine factory reads through it. Layout (``<cache_dir>/<model>-<fingerprint[:12]>/``)::

    identity-fp32-onnxruntime.onnx  + identity-fp32-onnxruntime.json  (FP32 export: the reference graph)
    frame-int8-onnxruntime.onnx     + frame-int8-onnxruntime.json     (Q/DQ graph, run by ONNX Runtime)
    frame-fp16-onnxruntime.onnx     + ...json                         (FP16 graph, FP32 inputs/outputs)
    frame-fp16-tensorrt.engine      + frame-fp16-tensorrt.json        (serialised TensorRT engine)

The bundled default model ships its FP32 export in the same layout and format inside the package
(``assets/graphs/<model>/``), so nothing is exported at first run; it is used when its manifest
names the same model fingerprint (config + weights sha256) and opset as the run.

Every manifest (format ``speech2vid-engine-2``) holds the graph, model, fingerprint, backend, precision,
the tensor specs, the opset, the weights (file, sha256), the model config, the ONNX sha256 a derived
engine was built from, the builder and its version, the environment (TensorRT version, GPU), the build
recipe and time, and the engine file's own sha256 and size. :func:`check_engine` refuses, with one line
and the command that fixes it, an engine that is

* **missing**: no engine file or no manifest (never built, or a build was interrupted);
* **corrupt**: an unreadable manifest, or an engine file whose sha256/size differ from its manifest;
* **foreign**: built for another model or weights, another TensorRT version, or another GPU;
* **stale**: built from an FP32 export that is no longer the current one, or for another opset.

Engine files are opaque (a TensorRT plan is deserialised by native code): hashing them against their
manifest before loading is what keeps a truncated or swapped file from reaching the deserialiser. A
manifest is a checksum, not a signature: whoever can write the cache can rewrite both (README).

A (re)build never breaks the engine it replaces: it writes the new engine files and manifests into a
hidden folder beside them (:func:`staging`) and, only when every one is complete, moves them over the
old ones (:func:`install_engines`). A build that fails or is interrupted before that leaves the old
engines as they were.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

import numpy as np

from speech2vid.config import BACKENDS, ENGINE_PRECISIONS, EngineConfig, ModelConfig, to_dict
from speech2vid.errors import EngineError
from speech2vid.files import host_tag, sha256_file, user_path, write_json_atomic
from speech2vid.model.io_spec import FRAME_GRAPH, GraphSpec, graph_specs
from speech2vid.partials import remove_stale_staging

ENGINE_FORMAT = "speech2vid-engine-2"
ENGINE_BACKENDS = tuple(b for b in BACKENDS if b != "torch")  # the backends that run engine files
EXTENSIONS = {"onnxruntime": ".onnx", "tensorrt": ".engine"}
EXPORT_BACKEND, EXPORT_PRECISION = "onnxruntime", "fp32"  # the FP32 ONNX export every engine derives from
MISSING, CORRUPT, FOREIGN, STALE = "missing", "corrupt", "foreign", "stale"
BATCH_AXIS = "N"
IDENTITY_BATCH_AXIS = "N_id"  # the frame graph's identity inputs: 1 (broadcast) or N
TRAIN_EXTRA = "pip install 'speech2vid[train]'"


class ModelIdentity(Protocol):
    """What the cache needs of a model: ``model.ref.ModelRef`` (torch-free) or a loaded model."""

    @property
    def cfg(self) -> ModelConfig: ...
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def is_random(self) -> bool: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def label(self) -> str: ...


class EngineRefused(EngineError):
    """An engine the manifest check refused; ``kind`` is missing, corrupt, foreign or stale."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class EngineFile:
    """Where one engine (or the FP32 export) lives, and what identifies it."""

    graph: str
    backend: str
    precision: str
    model: str
    fingerprint: str
    path: Path
    manifest_path: Path

    @property
    def is_export(self) -> bool:
        return (self.backend, self.precision) == (EXPORT_BACKEND, EXPORT_PRECISION)

    def describe(self) -> str:
        return f"{self.model} {self.graph} graph, {self.precision} {self.backend} engine"


# ----------------------------------------------------------------------------- where


def cache_root(engine_cfg: EngineConfig, cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir`` (``--cache-dir``) or ``engine.cache_dir``, ``~`` expanded."""
    return user_path(cache_dir if cache_dir is not None else engine_cfg.cache_dir)


FINGERPRINT_CHARS = 12  # of the model fingerprint in a folder name


def cache_folder(model: ModelIdentity, root: str | Path) -> Path:
    return user_path(root) / f"{model.name}-{model.fingerprint[:FINGERPRINT_CHARS]}"


def is_engine_folder_name(name: str) -> bool:
    """Whether ``name`` is one :func:`cache_folder` makes (other folders may share the root)."""
    model, _, tail = name.rpartition("-")
    return bool(model) and len(tail) == FINGERPRINT_CHARS and all(c in "0123456789abcdef" for c in tail)


def shipped_folder(model_name: str) -> Path:
    """Where the package ships a model's FP32 export (``assets/graphs/<model>``; may not exist)."""
    from speech2vid.assets import bundled_graphs_dir

    return bundled_graphs_dir() / model_name


def engine_file(model: ModelIdentity, graph: str, backend: str, precision: str, folder: str | Path) -> EngineFile:
    """The engine of ``graph`` in ``folder`` (a cache folder from :func:`cache_folder`, or a shipped one)."""
    if backend not in EXTENSIONS:
        raise EngineError(f"no engine files for backend '{backend}': choose one of {', '.join(EXTENSIONS)}")
    if precision not in ENGINE_PRECISIONS:
        raise EngineError(f"no '{precision}' engine files: choose one of {', '.join(ENGINE_PRECISIONS)}")
    folder = Path(folder)
    stem = f"{graph}-{precision}-{backend}"
    return EngineFile(
        graph,
        backend,
        precision,
        model.name,
        model.fingerprint,
        folder / f"{stem}{EXTENSIONS[backend]}",
        folder / f"{stem}.json",
    )


def cached_engine(model: ModelIdentity, graph: str, backend: str, precision: str, root: str | Path) -> EngineFile:
    """The engine of ``graph`` in the cache under ``root``."""
    return engine_file(model, graph, backend, precision, cache_folder(model, root))


def export_command(model: ModelIdentity) -> str:
    weights = "" if model.is_random is False and _is_bundled(model) else f" --weights {model.source}"
    return f"speech2vid export --model {model.name}{weights}"


def build_command(model: ModelIdentity, precision: str, backend: str) -> str:
    """The command line that (re)builds an engine; part of every refusal."""
    cmd = f"speech2vid build --model {model.name} --precision {precision} --backend {backend}"
    return cmd if _is_bundled(model) else f"{cmd} --weights {model.source}"


def _is_bundled(model: ModelIdentity) -> bool:
    if model.is_random:
        return False
    from speech2vid.model.ref import bundled_weights

    bundled = bundled_weights(model.name)
    return bundled is not None and Path(model.source).resolve() == bundled.resolve()


# ----------------------------------------------------------------------------- manifests


def axis_name(graph: str, tensor: str, spec: GraphSpec) -> str:
    """The dynamic batch axis of a tensor: the frame graph's identity inputs get their own (1 or N)."""
    identity_inputs = {t.name for t in spec.inputs[1:]} if graph == FRAME_GRAPH else set()
    return IDENTITY_BATCH_AXIS if tensor in identity_inputs else BATCH_AXIS


def spec_json(spec: GraphSpec) -> dict[str, list[dict[str, Any]]]:
    def one(t: Any) -> dict[str, Any]:
        shape = [axis_name(spec.name, t.name, spec) if d == -1 else d for d in t.shape]
        return {"name": t.name, "shape": shape, "dtype": np.dtype(t.dtype).name}

    return {"inputs": [one(t) for t in spec.inputs], "outputs": [one(t) for t in spec.outputs]}


def identity_fields(model: ModelIdentity, entry: EngineFile) -> dict[str, Any]:
    """The manifest fields that identify the engine (everything but hashes, timings and environment)."""
    return {
        "format": ENGINE_FORMAT,
        "graph": entry.graph,
        "model": entry.model,
        "fingerprint": entry.fingerprint,
        "backend": entry.backend,
        "precision": entry.precision,
        **spec_json(graph_specs(model.cfg)[entry.graph]),
    }


def write_manifest(
    model: ModelIdentity,
    entry: EngineFile,
    *,
    opset: int,
    source_sha256: str | None,
    builder: Mapping[str, str],
    build_seconds: float,
    config: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    weights_sha256: str | None = None,
) -> dict[str, Any]:
    """Write the sidecar JSON of a finished engine file (atomically) and return it.

    ``source_sha256``: the FP32 export a derived engine was built from (None for the export itself,
    whose source is the weights). ``weights`` is recorded as a file name for the shipped graphs, so
    that a manifest does not carry the path of the machine that made it.
    """
    manifest = {
        **identity_fields(model, entry),
        "opset": opset,
        "weights": model.source,
        "weights_sha256": weights_sha256,
        "random_weights": model.is_random,
        "model_config": to_dict(model.cfg),
        "source_onnx_sha256": source_sha256,
        "builder": dict(builder),
        "environment": dict(environment or {}),  # TensorRT: version, GPU name, compute capability
        "config": dict(config or {}),
        "recipe": dict(recipe or {}),  # the build settings the engine's bytes depend on
        "build_seconds": round(build_seconds, 3),
        "file": entry.path.name,
        "sha256": sha256_file(entry.path),
        "size_bytes": entry.path.stat().st_size,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(entry.manifest_path, manifest)
    return manifest


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest as a dict, or None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check_engine(
    model: ModelIdentity,
    entry: EngineFile,
    *,
    opset: int,
    source_sha256: str | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The engine's manifest, or :class:`EngineRefused` (one line + the fixing command).

    ``opset``: the run's ONNX opset; ``source_sha256``: for a derived engine, the current FP32 export's
    sha256 (None: there is none, so the engine is stale by definition); ``environment``: the fields that
    must equal the running machine's (TensorRT version, GPU name, compute capability).
    """
    if entry.is_export:
        fix = f"export it with `{export_command(model)}` (needs PyTorch: {TRAIN_EXTRA})"
    else:
        fix = f"rebuild it with `{build_command(model, entry.precision, entry.backend)}`"

    def refuse(kind: str, why: str) -> EngineRefused:
        return EngineRefused(kind, f"{kind} engine {entry.path}: {why}; {fix}")

    if not entry.path.is_file():
        raise refuse(MISSING, f"the {entry.describe()} has not been built")
    if not entry.manifest_path.is_file():
        raise refuse(MISSING, "it has no manifest beside it (an interrupted build, or copied without its .json)")
    manifest = read_manifest(entry.manifest_path)
    if manifest is None:
        raise refuse(CORRUPT, f"its manifest {entry.manifest_path.name} is not readable JSON")
    if manifest.get("format") != ENGINE_FORMAT:
        raise refuse(CORRUPT, f"its manifest {entry.manifest_path.name} is not a {ENGINE_FORMAT} manifest")
    for key in ("model", "fingerprint", "graph", "backend", "precision"):
        if key not in manifest:  # not "built for model 'None'": nothing says what it was built for
            raise refuse(
                CORRUPT, f"its manifest {entry.manifest_path.name} has no '{key}' (written by hand or another tool?)"
            )
        if manifest.get(key) != getattr(entry, key):
            built_for = str(manifest.get(key))[:16]
            raise refuse(
                FOREIGN, f"it was built for {key} '{built_for}', this run needs '{str(getattr(entry, key))[:16]}'"
            )
    got_env = manifest.get("environment")
    for key, want in (environment or {}).items():
        got = got_env.get(key) if isinstance(got_env, dict) else None
        if got != want:
            raise refuse(FOREIGN, f"it was built with {key} {str(got)[:40]!r}, this machine has {str(want)[:40]!r}")
    expected = identity_fields(model, entry)
    for key in ("inputs", "outputs"):
        if manifest.get(key) != expected[key]:
            raise refuse(STALE, f"its {key} differ from the model's tensors")
    if manifest.get("opset") != opset:
        raise refuse(STALE, f"it was made for ONNX opset {str(manifest.get('opset'))[:8]}, this run uses {opset}")
    if not entry.is_export:
        if source_sha256 is None:
            raise refuse(STALE, "the FP32 ONNX export it was built from is gone or no longer matches the model")
        if manifest.get("source_onnx_sha256") != source_sha256:
            raise refuse(STALE, "the FP32 ONNX export changed since it was built")
    size = entry.path.stat().st_size
    if manifest.get("size_bytes") != size or manifest.get("sha256") != sha256_file(entry.path):
        raise refuse(CORRUPT, "the file's size or sha256 differs from its manifest (truncated or modified)")
    return manifest


def fp32_export(model: ModelIdentity, graph: str, opset: int, root: str | Path) -> tuple[EngineFile, dict[str, Any]]:
    """The FP32 export of ``graph`` that this run uses, and its manifest: the graph shipped in the package
    when it was made from the same weights, config and opset, else the one in the cache.

    EngineRefused (missing, corrupt, ...) when neither is valid: the message names the export command.
    """
    shipped = engine_file(model, graph, EXPORT_BACKEND, EXPORT_PRECISION, shipped_folder(model.name))
    if shipped.path.is_file():
        try:
            return shipped, check_engine(model, shipped, opset=opset)
        except EngineRefused:
            pass  # other weights or another opset than the shipped ones: the cache's export is the one
    cached = cached_engine(model, graph, EXPORT_BACKEND, EXPORT_PRECISION, root)
    return cached, check_engine(model, cached, opset=opset)


def fp32_export_sha256(model: ModelIdentity, graph: str, opset: int, root: str | Path) -> str | None:
    """The sha256 of the valid FP32 export of ``graph``; None when there is none."""
    try:
        return str(fp32_export(model, graph, opset, root)[1]["sha256"])
    except EngineRefused:
        return None


# ----------------------------------------------------------------------------- writing


def writable_folder(folder: Path) -> Path:
    """``folder``, created if needed, after proving a file can be written there.

    EngineError (one line: the path, why, and ``--cache-dir``) for a read-only folder, a path through a
    regular file, or any other OS refusal: a build must not fail with a traceback halfway.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise EngineError(
            f"cannot write engines to {folder} ({why}): pass --cache-dir DIR (or set engine.cache_dir) to a writable "
            "folder"
        ) from None
    return folder


STAGING_PREFIX = ".build.partial-"  # hidden, and matched by the ".*partial*" of every writer's temporary names


@contextlib.contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A new hidden folder inside the cache folder ``folder`` (made writable first, see :func:`writable_folder`)
    where a build writes engines and manifests under their final names; :func:`install_engines` then moves
    them over the ones they replace.

    Nothing reads an engine from it. When the block ends, however it ends, the folder is deleted, and so is
    ``folder`` if it is left empty: a first build that failed leaves no model folder without engines.
    """
    writable_folder(folder)
    remove_stale_staging(folder)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{host_tag()}-{os.getpid()}-", dir=folder))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block are handled after it, as they would have been.

    Python runs signal handlers between bytecodes of the main thread, so without this an interrupt could
    land between an engine's rename and its manifest's. Other threads cannot set handlers: there the
    block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def install_engines(pairs: Sequence[tuple[EngineFile, EngineFile]]) -> None:
    """Move each finished ``(staged, entry)`` pair's engine file and manifest over ``entry``'s.

    Each rename is atomic; per engine the file goes first and the manifest last, so the one moment where
    they do not belong together (new file, old manifest) is refused as corrupt by :func:`check_engine`,
    never read as valid. SIGINT and SIGTERM wait until every pair is in place.
    """
    with _signals_deferred():
        for staged, entry in pairs:
            os.replace(staged.path, entry.path)
            os.replace(staged.manifest_path, entry.manifest_path)


def mark_used(folder: Path) -> None:
    """Record that an engine of ``folder`` was just used (its mtime: what ``cache prune --keep`` sorts by).
    Best effort: a read-only cache still runs."""
    try:
        os.utime(folder)
    except OSError:
        pass


# ----------------------------------------------------------------------------- list and prune


@dataclass(frozen=True)
class CacheFolder:
    """One model-and-weights folder of the cache."""

    path: Path
    model: str
    weights: str
    size_bytes: int
    files: int
    last_used: float  # seconds since the epoch (the folder's mtime)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def list_cache(root: Path) -> list[CacheFolder]:
    """Every engine folder under ``root``, most recently used first; [] when there is no cache
    (:func:`describe_missing_root` says so to a user)."""
    if not root.is_dir():
        return []
    out = []
    for folder in root.iterdir():
        if not folder.is_dir() or not is_engine_folder_name(folder.name):
            continue
        files = [p for p in folder.rglob("*") if p.is_file()]
        manifests = [m for m in (read_manifest(p) for p in folder.glob("*.json")) if m is not None]
        model = str(manifests[0].get("model", "?")) if manifests else "?"
        weights = str(manifests[0].get("weights", "?")) if manifests else "?"
        out.append(
            CacheFolder(
                folder, model, weights, sum(p.stat().st_size for p in files), len(files), folder.stat().st_mtime
            )
        )
    return sorted(out, key=lambda f: f.last_used, reverse=True)


def other_folders(root: Path) -> list[Path]:
    """Folders in the cache that hold no engines (an older release's expanded landmark model): listed, never pruned."""
    return (
        sorted(p for p in root.iterdir() if p.is_dir() and not is_engine_folder_name(p.name)) if root.is_dir() else []
    )


def describe_missing_root(root: Path) -> str | None:
    """One line for a cache folder that does not exist (nothing built yet, or a mistyped path); None when it does."""
    if root.is_dir():
        return None
    what = "is not a folder" if root.exists() else "does not exist"
    return f"engine cache {root} {what}: nothing is cached there (another folder: --cache-dir DIR or engine.cache_dir)"


def prune_cache(root: Path, *, keep: int | None = None, older_than_days: float | None = None) -> list[CacheFolder]:
    """Delete engine folders: all but the ``keep`` most recently used, and those unused for
    ``older_than_days``. Returns what was deleted. Other files and folders in ``root`` are left alone."""
    if keep is None and older_than_days is None:
        raise EngineError("cache prune needs --keep N and/or --older-than DAYS")
    if keep is not None and keep < 0:
        raise EngineError(f"--keep must be 0 or more, got {keep}")
    # A negative age would put the cutoff in the future (every folder deleted), and NaN compares false
    # with every time (nothing deleted, silently); neither is what anyone asked for.
    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise EngineError(f"--older-than must be a number of days, 0 or more, got {older_than_days}")
    folders = list_cache(root)
    doomed = folders[keep:] if keep is not None else []
    if older_than_days is not None:
        cutoff = time.time() - older_than_days * 86400
        doomed += [f for f in folders if f.last_used < cutoff and f not in doomed]
    for f in doomed:
        try:
            shutil.rmtree(f.path)
        except OSError as exc:
            raise EngineError(f"cannot delete {f.path} ({exc.strerror or exc}): check its permissions") from None
    return doomed
