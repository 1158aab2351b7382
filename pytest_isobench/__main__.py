"""`python -m pytest_isobench ...`: the command-line tools (validate, summarize, hashes)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
