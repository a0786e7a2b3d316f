"""Which engine a command runs when the user did not say: the INT8 one on CPU, when it is built.

``generate`` and ``live`` share the rule (``generate.prefer_int8``, ``live.prefer_int8``); the choice is
logged either way, never silent.
"""

from __future__ import annotations

import logging
from typing import Any, Callable


def prefer_int8(
    settings: Any, *, enabled: bool, explicit: bool, make: Callable[[Any], Any], command: str, gain: str, missing: int
) -> Any:
    """``settings`` with the INT8 engine when ``enabled``, on CPU with ONNX Runtime, no ``--precision`` given
    (``explicit``) and the engine built (``make(settings)`` refuses it otherwise). The choice is logged, never
    silent; an INT8 engine that is not built is said at level ``missing``, with how to build it."""
    import dataclasses

    from speech2vid.engine.cache import EngineRefused

    log = logging.getLogger(f"speech2vid.{command}")  # said by the command's own logger
    e = settings.engine
    if explicit or not enabled or e.backend != "onnxruntime" or e.device != "cpu" or e.precision == "int8":
        return settings
    int8 = dataclasses.replace(settings, engine=dataclasses.replace(e, precision="int8"))
    try:
        make(int8)
    except EngineRefused as exc:
        log.log(
            missing,
            "%s: no usable INT8 engine (%s); running %s. Build it for %s: speech2vid build --precision int8",
            command,
            str(exc).split(": ", 1)[-1],
            e.precision,
            gain,
        )
        return settings
    log.info(
        "%s: running the INT8 engine on CPU (%s.prefer_int8; --precision %s to run %s)",
        command,
        command,
        e.precision,
        e.precision,
    )
    return int8


def live_threads(settings: Any) -> Any:
    """``settings`` with ONNX Runtime's intra-op threads set to ``live.inference_threads`` (when not 0)."""
    import dataclasses

    n = settings.live.inference_threads
    e = settings.engine
    if n == 0 or e.backend != "onnxruntime":
        return settings
    ort = dataclasses.replace(e.onnxruntime, intra_op_threads=n)
    return dataclasses.replace(settings, engine=dataclasses.replace(e, onnxruntime=ort))


def live_precision(settings: Any, *, explicit: bool, make: Callable[[Any], Any]) -> Any:
    """The settings ``live`` runs with: :func:`live_threads`, and on CPU with ONNX Runtime and
    ``live.prefer_int8``, the INT8 engine when it is built (``make(settings)`` refuses it otherwise); the
    choice and its reason are logged, never silent. ``explicit``: ``--precision`` was given (always obeyed)."""
    return prefer_int8(
        live_threads(settings),
        enabled=settings.live.prefer_int8,
        explicit=explicit,
        make=make,
        command="live",
        gain="lower latency",
        missing=logging.WARNING,
    )
