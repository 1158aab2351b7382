"""The judge stage's view of the package's redaction (``pytest_isobench.secrets``).

An SDK error can quote a request or an endpoint can echo a header back, so every message and every
verdict goes through ``redact`` before it is stored, returned or raised.
"""

from __future__ import annotations

from ..secrets import KEY_ENV_VARS, redact, secret_values

__all__ = ["KEY_ENV_VARS", "redact", "secret_values"]
