"""speech2vid: a still face photo + speech in, a lip-synced talking face out."""

import os

# ONNX Runtime (1.29 and later) records telemetry events under ~/.cache/Microsoft and uploads them. A
# kiosk must not collect telemetry by default, and only this variable, set before ONNX Runtime is first
# imported, stops it completely (disable_telemetry_events() comes after the first event). Every module
# of the package is imported after this one, so it covers the engines, the VAD and the builders; a
# user who wants telemetry sets ORT_DISABLE_TELEMETRY=0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

__all__ = ["Avatar", "Frame", "__version__"]


def __getattr__(name: str) -> object:
    # The streaming API (speech2vid/api.py) opens engines; importing the package for its CLI or a submodule
    # must not pay for that, so the names load on first use.
    if name in ("Avatar", "Frame"):
        from speech2vid import api

        return getattr(api, name)
    raise AttributeError(f"module 'speech2vid' has no attribute {name!r}")
