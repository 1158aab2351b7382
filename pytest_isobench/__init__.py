"""pytest-isobench: ISO-Bench (can coding agents optimize real-world inference code?) as a pytest plugin."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-isobench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from .gate import require_hard_pass
from .results import Outcome

__all__ = ["Outcome", "__version__", "require_hard_pass"]
