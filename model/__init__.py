"""The Speech2Vid networks (PyTorch), their cost, and weight files.

Importing this package does not import PyTorch: the torch-free runtime reads ``model.io_spec`` (the
graphs' tensors) and ``model.ref`` (which weights, their fingerprint) without it. The networks are
loaded on first use of the names below.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Speech2Vid", "IdentityGraph", "FrameGraph", "build_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from speech2vid.model import speech2vid

        return getattr(speech2vid, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
