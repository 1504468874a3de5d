"""Every request gets an id: the client's ``X-Request-ID`` when it is sane, else a new UUID.

The id is put in ``scope["state"]["request_id"]`` (``request.state.request_id``) before
anything else runs, and sent back in the ``X-Request-ID`` response header, so that log
lines, audit records and the client's own records can be matched.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# A client-chosen id is kept only if it cannot smuggle anything into logs or CSV exports.
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{8,64}$")


class RequestIdMiddleware:
    """Pure ASGI middleware (it must not buffer bodies: exports stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Give the request its id, then pass it on; the response carries the id back."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers") or []).get(HEADER, b"")
        request_id = offered.decode() if _SANE_ID.match(offered) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)
