"""``python -m streams`` is the ``kpi`` command."""

import sys

from streams.cli import main

sys.exit(main())
