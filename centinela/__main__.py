"""Run the command line as ``python -m centinela``."""

from centinela.cli import main

raise SystemExit(main())
