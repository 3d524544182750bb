"""``python -m tests.fleet``: see the package docstring."""

import sys

from tests.fleet import main

sys.exit(main())
