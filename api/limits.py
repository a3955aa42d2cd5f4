"""Request bodies no larger than a route needs (413 beyond it), enforced before the route reads them.

A verification body is a key and a few claims; every other body is a short form. Both the declared
`Content-Length` and the bytes actually received count, so a chunked or lying client is cut off too.
"""

from __future__ import annotations

import json
from typing import Any

VERIFY_BYTES = 16 * 1024  # POST /verify/{resource_id}: {"key": {...}, "claims": {...}}
DEFAULT_BYTES = 256 * 1024  # every other body: forms, lists of fields or ids, Delta Sharing queries
LIMITS = {"/verify/": VERIFY_BYTES, "/upstream/verify/": VERIFY_BYTES}


def limit_for(path: str) -> int:
    """The largest body a request to `path` may carry."""
    return next((n for prefix, n in LIMITS.items() if path.startswith(prefix)), DEFAULT_BYTES)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: answer 413 to a body over the route's limit, before or while it arrives."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received, started = 0, False

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"the request body is larger than this route takes ({limit:,} bytes)"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
