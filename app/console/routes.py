"""Serve the console's few static files with a strict Content-Security-Policy.

Only the files named in :data:`ASSETS` are served (no directory listing, no path
from the request reaches the file system). Paths under ``/console`` are not audited
(``app.audit.middleware.AUDITED_PREFIXES``): loading the page reveals nothing; the
API calls the page then makes are audited.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from app.http.errors import not_found

STATIC_DIR = Path(__file__).parent / "static"
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "timeline.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "recalls.js": "text/javascript; charset=utf-8",
    "disclosure-view.js": "text/javascript; charset=utf-8",
    "disclosure.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    # The browser asks for an icon anyway; without one it would ask /favicon.ico and get a 404.
    "favicon.svg": "image/svg+xml",
}
# No inline script or style, nothing from another origin, no plugins, no framing, and no
# form submission at all: the login form is handled by script, so a form that were somehow
# submitted natively could never put the token into a URL.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
def console_root() -> RedirectResponse:
    """``/console`` -> ``/console/`` so the page's relative asset paths resolve."""
    return RedirectResponse("/console/", status_code=308)


@router.get("/")
def console_page() -> FileResponse:
    """The single page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/{asset}")
def console_asset(asset: str) -> FileResponse:
    """One of the page's script or style files; anything else is a plain 404."""
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise not_found()
    return FileResponse(STATIC_DIR / asset, media_type=media_type, headers=HEADERS)
