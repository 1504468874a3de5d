"""The interactive API description at ``/docs``: Swagger UI served by Tearline itself, offline.

FastAPI's own ``/docs`` page loads Swagger UI from a public CDN and starts it with an inline
script. Exchanges run on networks without internet access, and the console's discipline (no
inline script, nothing from another origin) applies to every page Tearline serves. So the
Swagger UI files come from the ``fastapi-offline`` package (kept current with Swagger UI 5, so no
file is vendored here), the start-up code is a file of its own, and the page and its files carry
a strict Content-Security-Policy. ``/redoc`` is not served: ReDoc inserts ``<style>`` elements at
run time, which that policy forbids. Like the console, these paths are not audited.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.http.errors import not_found

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_UI_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
# The console's policy, with images from data: URLs: Swagger UI's style sheet draws its icons
# that way. Requests made with "Try it out" go to this server only (connect-src 'self').
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs_page() -> FileResponse:
    """The Swagger UI page over ``/openapi.json``."""
    return FileResponse(STATIC_DIR / "apidocs.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/docs/init.js")
def docs_init() -> FileResponse:
    """The script that starts Swagger UI (a file, so the policy needs no inline script)."""
    return FileResponse(STATIC_DIR / "apidocs.js", media_type="text/javascript; charset=utf-8", headers=HEADERS)


@router.get("/docs/assets/{asset}")
def docs_asset(asset: str) -> FileResponse:
    """One of Swagger UI's files from the installed package; anything else is a plain 404."""
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise not_found()
    return FileResponse(SWAGGER_UI_DIR / asset, media_type=media_type, headers=HEADERS)
