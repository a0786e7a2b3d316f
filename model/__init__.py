"""The Speech2Vid networks (PyTorch), their cost, and weight files."""

from speech2vid.model.speech2vid import FrameGraph, IdentityGraph, Speech2Vid, build_model

__all__ = ["Speech2Vid", "IdentityGraph", "FrameGraph", "build_model"]
