"""Shared test set-up: device markers, and small inputs the tests make themselves."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped with the reason elsewhere)")
    config.addinivalue_line("markers", "tensorrt: needs TensorRT and a CUDA GPU")


# -- engines: one lite model and one ONNX export per session (test_engines, test_export, test_bench) ----


@pytest.fixture(scope="session")
def lite_loaded():  # type: ignore[no-untyped-def]
    """The lite model with random weights (a LoadedModel); tests must not modify it."""
    from speech2vid.config import load_model_config
    from speech2vid.model.weights import load_model

    return load_model(load_model_config("lite"), "random")


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private engine cache folder, so tests never read or write ~/.cache."""
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def lite_onnx(lite_loaded, engine_cache):  # type: ignore[no-untyped-def]
    """{graph name: ONNX path} of the lite model, exported once into ``engine_cache``."""
    from speech2vid.build_engines.onnx_export import export_fp32
    from speech2vid.config import EngineConfig

    return {graph: entry.path for graph, entry in export_fp32(lite_loaded, EngineConfig(), engine_cache).items()}


@pytest.fixture(scope="session")
def lite_built(lite_loaded, engine_cache, lite_onnx):  # type: ignore[no-untyped-def]
    """(settings, built rows): the lite model's INT8 (Q/DQ) and FP16 ONNX Runtime engines, built once into
    ``engine_cache`` with a small, quick calibration (8 samples, min-max)."""
    from speech2vid.build_engines.build import build
    from speech2vid.config import CalibConfig, EngineConfig, Settings

    settings = Settings(engine=EngineConfig(cache_dir=str(engine_cache)), calib=CalibConfig(size=8, method="minmax"))
    rows = [
        *build(lite_loaded, settings, precision="int8", backend="onnxruntime"),
        *build(lite_loaded, settings, precision="fp16", backend="onnxruntime"),
    ]
    return settings, rows


# -- training/evaluation: the project's own synthetic corpus, made once per session (about a minute) ----


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small synthetic talking-face dataset (`speech2vid.training.synth.make_corpus` defaults); do not modify it."""
    from speech2vid.training.synth import make_corpus

    return make_corpus(tmp_path_factory.mktemp("synth-corpus"))
