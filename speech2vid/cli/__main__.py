"""``python -m speech2vid.cli`` (what ``torchrun -m speech2vid.cli train ...`` runs): the same as ``speech2vid``."""

import sys

from speech2vid.cli import main

sys.exit(main())
