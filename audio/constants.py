"""Audio constants shared by the decoder and the feature front end.

Kept in a module without heavy imports so that ``speech2vid.features`` can use them without
pulling in PyAV or soxr.
"""

from __future__ import annotations

SAMPLE_RATE: int = 16000  # the model's input rate (MODEL.md, "Audio front end")
