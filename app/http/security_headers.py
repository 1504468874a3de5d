"""Response headers every answer carries: no MIME sniffing, no caching, no framing, no referrer.

API responses hold releasable intelligence meant for one principal: ``Cache-Control: no-store``
keeps them out of shared and browser caches. Cross-origin requests are not enabled at all (no
CORS middleware is installed), so a browser preflight never receives an
``Access-Control-Allow-Origin`` header. A pure ASGI middleware, so streamed bodies pass untouched.

Every response also carries a Content-Security-Policy: the pages (the console, ``/docs``) set
their own, and everything else gets :data:`DEFAULT_POLICY`, which lets a browser load nothing at
all. An answer that a browser renders by mistake (an error page, a JSON body shown as a document)
can then neither run script nor fetch anything, from this instance or any other.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
CSP = b"content-security-policy"
DEFAULT_POLICY = b"default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Add :data:`SECURITY_HEADERS` to every HTTP response, replacing any value a route set, and
    :data:`DEFAULT_POLICY` to those that set no Content-Security-Policy of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; set the security headers on its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                if not any(k.lower() == CSP for k, _ in headers):
                    headers.append((CSP, DEFAULT_POLICY))
                message = {**message, "headers": headers + list(SECURITY_HEADERS)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    """Install the middleware on ``app``."""
    app.add_middleware(SecurityHeadersMiddleware)
