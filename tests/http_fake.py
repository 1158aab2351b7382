"""The common part of the tests' fake HTTP servers: a ThreadingHTTPServer served from a daemon thread.

A fake subclasses :class:`HttpFake`, builds its handler class and calls ``super().__init__`` with it;
``with fake:`` serves until the block ends, then stops the server, closes its socket and joins the
thread. The port is bound on construction, so ``root`` is known before serving starts.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class HttpFake:
    """A server bound to ``host:port`` (0: a free port) and the daemon thread that serves it."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll_interval: float = 0.05,
    ) -> None:
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(poll_interval,), daemon=True)

    @property
    def bound_port(self) -> int:
        """The port the server listens on (the free one chosen when constructed with port 0)."""
        return int(self.server.server_address[1])

    @property
    def root(self) -> str:
        """``http://HOST:PORT`` of the server, without a path."""
        return f"http://{self.server.server_address[0]!s}:{self.bound_port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
