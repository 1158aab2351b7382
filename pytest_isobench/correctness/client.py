"""A stdlib-only client for an OpenAI-compatible completions server, run where the server runs.

The greedy check copies this file next to its artifacts and runs it with the sandbox's ``run``, so it
asks the server from the server's side: on this machine under the local backend, inside the
measurement container under docker (whose network may be none). It reads a JSON job::

    {"base_url": "http://127.0.0.1:8000", "model": null, "timeout_s": 60, "requests": [{...}, ...]}

asks ``GET /v1/models`` for the model when it is null, posts every request body (with the model) to
``/v1/completions`` and prints ``{"model": ..., "responses": [...]}`` as JSON. Any failure is a message
on stderr and exit code 2. Runs on any Python 3 the task's image has.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any


def _call(url: str, body: dict[str, Any] | None, timeout_s: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise SystemExit(f"{url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SystemExit(f"{url}: {type(exc).__name__}: {exc}") from None


def main(argv: list[str]) -> None:
    with open(argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    base, timeout_s = job["base_url"].rstrip("/"), float(job["timeout_s"])
    model = job.get("model")
    if not model:
        listed = _call(base + "/v1/models", None, timeout_s).get("data") or []
        if not listed:
            raise SystemExit(base + "/v1/models lists no model; set `model` in the check")
        model = listed[0]["id"]
    url = base + "/v1/completions"
    responses = [_call(url, dict(body, model=model), timeout_s) for body in job["requests"]]
    json.dump({"model": model, "responses": responses}, sys.stdout)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
            sys.exit(2)
        raise
