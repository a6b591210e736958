"""The server's ASGI middleware: what every request passes through before its endpoint, whatever the endpoint."""

from __future__ import annotations

import logging
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nlpkit.deploy.requests import error_response

#: one line per request on standard error: ``POST /predict 200 12.3 ms``
ACCESS = logging.getLogger("nlpkit.serve")


class AccessLog:
    """ASGI middleware: one line per request, with its method, path, status and time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; log it when its response has started, or when it ends without one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            took = (time.perf_counter() - start) * 1000
            ACCESS.info("%s %s %s %.1f ms", scope["method"], scope["path"], status or "-", took)


class ClosingConnections:
    """ASGI middleware: a response says ``Connection: close`` when its connection closes after it: while the server
    drains, and when it answers before reading the whole request body (a 413, a refusal at capacity). So a client
    never sends its next request on a connection that is closing, where it would be lost unread."""

    def __init__(self, app: ASGIApp, draining: threading.Event) -> None:
        self.app, self.draining = app, draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting whether its body was read; mark its response's connection as closing."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        body_read = headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers

        async def receiving() -> Message:
            nonlocal body_read
            message = await receive()
            body_read = body_read or (message["type"] == "http.request" and not message.get("more_body", False))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and (self.draining.is_set() or not body_read):
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receiving, sending)


#: paths a load balancer polls: answered even when ``max_connections`` requests are in flight
UNLIMITED_PATHS = ("/health", "/metadata")


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` requests in flight; one beyond gets 503 with ``Retry-After`` at once,
    so overload is refused instead of queued in memory (``/health`` and ``/metadata`` are always answered)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.active = app, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or refuse it when ``limit`` are in flight."""
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            response = error_response(503, f"the server is at capacity ({self.active} requests in flight); retry")
            response.headers["Retry-After"] = "1"
            await response(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
