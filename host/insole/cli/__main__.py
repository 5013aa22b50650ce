"""``python -m insole.cli``: the same as the ``insole`` command."""

import sys

from insole.cli import main

sys.exit(main())
