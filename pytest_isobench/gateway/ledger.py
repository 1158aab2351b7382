"""One attempt's account at the model gateway: its token, its caps, what it used (``model_calls.jsonl``)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .usage import Usage

TOKEN_PREFIX = "isobench-gw-"  # an attempt's token: never a provider key's shape
CALLS_FILE = "model_calls.jsonl"


class Ledger:
    """One attempt at the gateway: its token, its caps, what it used. Thread-safe."""

    def __init__(
        self,
        label: str,
        log_path: Path,
        *,
        budget_usd: float | None,
        max_tokens: int | None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.label = label
        self.gateway_alive = alive  # whether the gateway that issued it still serves
        self.log_path = log_path
        self.token = TOKEN_PREFIX + secrets.token_hex(24)
        self.budget_usd = budget_usd
        self.max_tokens = max_tokens
        self.revoked = False
        self.stop: str | None = None  # "budget" once a cap refused a request
        # The harness's fault, not the agent's: the provider refused the gateway's credentials.
        self.fault: str | None = None
        self.calls = 0
        self.errors = 0
        self.late_calls = 0  # requests with this token after it was revoked
        self.usage = Usage()
        self.cost = 0.0
        self.unpriced: set[str] = set()
        self.refused: dict[str, int] = {}
        self._lock = threading.Lock()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()

    def note_fault(self, message: str) -> None:
        """Keep the first harness-side fault seen during the attempt (the task will be E with it)."""
        with self._lock:
            self.fault = self.fault or message

    def revoke(self) -> None:
        """End the attempt: its token is refused from now on (a process it left cannot keep spending)."""
        self.revoked = True

    def over_cap(self) -> str | None:
        """Why no further request may pass (the cap that is reached), or None."""
        with self._lock:
            if self.max_tokens is not None and self.usage.total >= self.max_tokens:
                return f"its token cap of {self.max_tokens} tokens is reached ({self.usage.total} used)"
            if self.budget_usd is not None and self.cost >= self.budget_usd:
                return f"its budget of ${self.budget_usd:g} is spent (${self.cost:.4f})"
        return None

    def record(self, entry: dict[str, Any]) -> None:
        """Count one call and append it to ``model_calls.jsonl``."""
        tokens = entry.get("tokens")
        with self._lock:
            self.calls += 1
            if entry.get("error") or int(entry.get("status") or 0) >= 400:
                self.errors += 1
            if refused := entry.get("refused"):
                self.refused[refused] = self.refused.get(refused, 0) + 1
            if isinstance(tokens, dict):
                self.usage.add(Usage(tokens["input"], tokens["output"], tokens["cached"]))
                if entry.get("cost_usd") is not None:
                    self.cost += float(entry["cost_usd"])
                elif entry.get("model"):
                    self.unpriced.add(str(entry["model"]))
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True)
            with self.log_path.open("a", encoding="utf-8") as stream:
                stream.write(line + "\n")

    def summary(self) -> dict[str, Any]:
        """What the outcome keeps: tokens and cost as the gateway counted them, and the call counts."""
        with self._lock:
            return {
                "calls": self.calls,
                "errors": self.errors,
                "tokens": self.usage.to_wire(),
                "cost_usd": None if self.unpriced and not self.cost else round(self.cost, 6),
                "unpriced_models": sorted(self.unpriced),
                "refused": dict(self.refused),
                "stop": self.stop,
                "budget_usd": self.budget_usd,
                "max_tokens": self.max_tokens,
                "late_calls": self.late_calls,
                "log": self.log_path.name,
            }
