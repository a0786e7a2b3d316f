"""The ``speech2vid`` command: the one place that parses arguments.

One module per command group (:mod:`.render`, :mod:`.engines`, :mod:`.live`, :mod:`.data`, :mod:`.train`,
:mod:`.weights`), the shared options and error contract in :mod:`.options`, and :mod:`.app`, which builds
the parser and runs a command. Library code takes typed values; an import-linter contract keeps argparse
here, and tests/test_layers.py checks that no other module imports it.
"""

from speech2vid.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
