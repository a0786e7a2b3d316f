"""The parser of every command, and ``main``: run one, with the error contract of :mod:`.options`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from typing import Any, Callable

from speech2vid import __version__
from speech2vid.cli import data, engines, live, render, train, weights
from speech2vid.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    TRAIN_COMMANDS,
    TRAIN_EXTRA,
    Parser,
    printable,
    torch_installed,
)
from speech2vid.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI, in the order ``--help`` lists it."""
    parser = Parser(
        prog="speech2vid",
        description="Talking faces from a still photo and speech (Speech2Vid, BMVC 2017), offline or live.",
    )
    parser.add_argument("--version", action="version", version=f"speech2vid {__version__}")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML file laid over configs/default.yaml (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    has_torch = torch_installed()

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, **kw: Any) -> argparse.ArgumentParser:
        if name in TRAIN_COMMANDS and not has_torch:
            help += f" [needs {TRAIN_EXTRA}]"
        p = sub.add_parser(name, help=help, description=help, **kw)
        p.set_defaults(func=func)
        return p

    def takes_options(p: argparse.ArgumentParser) -> bool:
        """Without PyTorch a training command takes anything, so that ``main`` can say what it needs
        instead of argparse naming a missing option."""
        if not has_torch:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return has_torch

    render.add_commands(add)
    engines.add_commands(add)
    live.add_commands(add)
    data.add_commands(add, takes_options)
    train.add_commands(add, takes_options)
    weights.add_commands(add)
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(message)s" if verbose else "%(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_escape_record)
    if not verbose:
        # The exporters' own chatter is noise to a user; our loggers say what matters.
        for noisy in ("torch", "onnxscript", "onnx_ir", "torch.onnx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"torch\..*")
        warnings.filterwarnings("ignore", module=r"onnxscript\..*")


def _escape_record(record: logging.LogRecord) -> bool:
    """Log lines, like errors, show control characters escaped (a file name with ESC in it cannot
    rewrite the terminal); line breaks of multi-line reports (tables) are kept."""
    message = record.getMessage()
    escaped = "\n".join(printable(line) for line in message.split("\n"))
    if escaped != message:
        record.msg, record.args = escaped, None
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``systemctl stop``), raised where the main thread is, so that it unwinds like
    Ctrl-C: every writer's ``with`` block deletes its temporary file and nothing half-written remains."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    needs_train_extra = args.command in TRAIN_COMMANDS and not torch_installed()
    if unknown and not needs_train_extra:  # without PyTorch their options are not known: the error below says why
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _configure_logging(args.verbose, args.quiet)
    # Only the main thread may set handlers (tests call main() from threads); `live` sets its own for its loop.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        if needs_train_extra:
            raise UserError(
                f"`speech2vid {args.command}` needs PyTorch, which the runtime install leaves out: {TRAIN_EXTRA}"
            )
        return int(args.func(args))
    except UserError as exc:
        print(f"speech2vid: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Terminated:
        print("speech2vid: terminated (SIGTERM): stopped, unfinished output removed", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("speech2vid: interrupted (SIGINT): stopped, unfinished output removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
