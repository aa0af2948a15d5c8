"""Allow `python -m forwardforward`."""

import sys

from .cli import main

sys.exit(main())
