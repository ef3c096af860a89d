"""``python -m scope_shared.cli``: the ``scope`` command."""

import sys

from scope_shared.cli import main

sys.exit(main())
