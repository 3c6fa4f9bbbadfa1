"""`python -m clipper.cli`: the `clipper` command."""

from __future__ import annotations

import sys

from clipper.cli.main import main

sys.exit(main())
