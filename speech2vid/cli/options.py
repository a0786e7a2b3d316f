"""What every command group shares: the parser with the product's error contract, bounded numbers, the
engine options, and settings built from the config files and the options given.

User errors (bad files, options, configs) are printed as one line with a non-zero exit and no
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any, Callable, NoReturn

from speech2vid.config import MAX_INT
from speech2vid.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM: what a shell or systemd reports for a process ended by it
# Commands that need PyTorch, which the runtime install leaves out (the [train] extra adds it).
TRAIN_COMMANDS = ("export", "synth", "prepare", "train", "eval", "import-matconvnet", "pack-weights", "pack-mediapipe")
TRAIN_EXTRA = "pip install 'speech2vid[train]'"

log = logging.getLogger("speech2vid.cli")
RANDOM_LABEL = "RANDOM WEIGHTS - NOT A TRAINED MODEL"  # burnt into every frame an untrained model renders


class Parser(argparse.ArgumentParser):
    """argparse with the product's error contract: one line on stderr, exit 2, and every number checked.

    Every ``type=int`` or ``type=float`` option, whoever adds it (the training commands add their own),
    takes only finite values within 0..2**31-1: no option of this CLI means a negative count, size or
    time, and NaN or infinity would slip past every ``x <= 0`` check. Options with tighter bounds give a
    :func:`number` type of their own.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        return super().add_argument(*args, **_bounded(kwargs))

    def add_argument_group(self, *args: Any, **kwargs: Any) -> argparse._ArgumentGroup:
        group = super().add_argument_group(*args, **kwargs)
        plain = group.add_argument
        group.add_argument = lambda *a, **kw: plain(*a, **_bounded(kw))  # type: ignore[method-assign]
        return group

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"speech2vid: error: {printable(message)} (see `{self.prog} --help`)\n")


def _bounded(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``add_argument``'s keywords with a plain ``type=int`` or ``type=float`` made finite and 0..MAX_INT."""
    if kwargs.get("type") in (int, float):
        kwargs["type"] = number(kwargs["type"], 0, MAX_INT)
    return kwargs


def number(kind: type, lo: float, hi: float, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``kind`` (int or float) within [lo, hi] (``above``: strictly above ``lo``), finite."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{'an integer' if kind is int else 'a number'} is needed, got '{text}'"
            ) from None
        if not math.isfinite(value) or value < lo or value > hi or (above and value == lo):
            low = "(" if above else "["
            raise argparse.ArgumentTypeError(f"must be within {low}{_plain(lo)}, {_plain(hi)}], got '{text}'")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``): a file name or a YAML key can hold any
    of them, and printed raw they would move the cursor, recolour or clear the user's terminal."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


# ----------------------------------------------------------------------------- shared options


def settings_from(args: argparse.Namespace) -> Any:
    from speech2vid.config import load_settings

    overrides: dict[str, Any] = {}
    engine: dict[str, Any] = {}
    for key in ("backend", "device", "precision", "cache_dir"):
        value = getattr(args, key, None)
        if value is not None:
            engine[key] = value
    if engine:
        overrides["engine"] = engine
    if getattr(args, "model", None) is not None:
        overrides["model"] = args.model
    if getattr(args, "weights", None) is not None:
        overrides["weights"] = args.weights
    if getattr(args, "size", None) is not None:
        overrides.setdefault("generate", {})["output_size"] = args.size
        overrides["generate"]["photo_max_side"] = args.size
    if getattr(args, "raw_face", False):
        overrides.setdefault("generate", {})["compose"] = "face"
    if args.command == "generate" and getattr(args, "idle", None) is not None:
        overrides.setdefault("generate", {})["idle"] = args.idle
    if args.command == "live":
        from speech2vid.cli.live import live_overrides

        overrides["live"] = live_overrides(args)
    settings = load_settings(*args.config, overrides=overrides)
    return settings


def check_outputs(
    outputs: list[tuple[str, str | None]], inputs: list[str | None], suffixes: tuple[str, ...] = ()
) -> None:
    """The one output rule (:mod:`speech2vid.outputs`) for a command's report files, before any work."""
    from speech2vid.outputs import check_distinct, check_output

    given = [i for i in inputs if i is not None]
    checked = [(what, check_output(path, what=what, inputs=given, suffixes=suffixes)) for what, path in outputs if path]
    check_distinct(checked)


def add_cache_dir(p: argparse._ActionsContainer) -> None:  # a parser or an argument group
    p.add_argument(
        "--cache-dir", metavar="DIR", help="engine cache folder (default engine.cache_dir, ~/.cache/speech2vid/engines)"
    )


def add_engine_options(p: argparse.ArgumentParser, *, weights: bool = True) -> None:
    from speech2vid.config import BACKENDS, DEVICES, PRECISIONS

    g = p.add_argument_group("model and engine (defaults from configs/default.yaml)")
    g.add_argument("--model", help="model geometry: paper, lite, or a model YAML file")
    if weights:
        g.add_argument("--weights", help="safetensors weights file, or 'random' (untrained, for plumbing tests)")
    g.add_argument("--backend", choices=BACKENDS, help="inference backend (torch needs the [train] extra)")
    g.add_argument("--device", choices=DEVICES, help="device (torch: cpu or cuda)")
    g.add_argument("--precision", choices=PRECISIONS, help="engine precision")
    add_cache_dir(g)


def torch_installed() -> bool:
    from speech2vid.engine.factory import torch_installed

    return torch_installed()


def model_for(settings: Any) -> Any:
    """The model and weights of ``settings`` (no PyTorch); ``--weights random`` needs PyTorch to make them."""
    from speech2vid.config import load_model_config
    from speech2vid.model.ref import model_ref

    ref = model_ref(load_model_config(settings.model), settings.weights)
    if ref.is_random:
        if not torch_installed():
            raise UserError(
                "--weights random makes untrained weights with PyTorch, which the runtime install leaves out: "
                f"{TRAIN_EXTRA}"
            )
        log.warning("using RANDOM, untrained weights: the video shows no face and is labelled as such")
    return ref


def engine_for(settings: Any) -> tuple[Any, Any]:
    """(model reference, engine not yet opened) for ``settings``: the FP32 graphs are exported first when
    the run needs them and neither the package nor the cache has them (with PyTorch; else one line)."""
    from speech2vid.build_engines.build import ready_engine

    ref = model_for(settings)
    return ref, ready_engine(ref, settings.engine)
