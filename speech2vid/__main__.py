import sys

from speech2vid.cli import main

sys.exit(main())
