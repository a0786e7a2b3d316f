"""Shared test set-up: device markers, and small inputs the tests make themselves."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped with the reason elsewhere)")
    config.addinivalue_line("markers", "tensorrt: needs TensorRT and a CUDA GPU")
