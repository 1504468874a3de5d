"""Request bodies: read only after the caller is authenticated and holds the route's right, never past a limit.

FastAPI reads and parses a declared body parameter before it resolves any dependency, so an
unauthenticated client could make the server read, buffer and parse a large body, and learn
from a 400 that its JSON was malformed before being told it has no token. Routes here take their
JSON body through :func:`json_body`, a dependency that depends on the route's guard (the
dependency that authenticates and checks the right): the guard runs first, then the body is read
with :func:`read_body` up to ``max_content_length`` (413 as soon as it is exceeded) and validated
against the model, with the same 400 problem document a declared body gives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from app.config.settings import Settings
from app.http.errors import ApiError

Model = TypeVar("Model", bound=BaseModel)


async def read_body(request: Request, max_length: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``max_length`` bytes."""
    too_large = ApiError(413, f"The request body exceeds max_content_length ({max_length} bytes).")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_length:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_length:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(
    model: type[Model], guard: Callable[..., Any], *, optional: bool = False
) -> Callable[..., Awaitable[Model | None]]:
    """A dependency giving the request's JSON body as ``model``, read only once ``guard`` has passed.

    ``optional``: an empty body gives None instead of a 400.
    """

    async def dependency(request: Request, _: Any = Depends(guard)) -> Model | None:
        settings: Settings = request.app.state.settings
        raw = await read_body(request, settings.max_content_length)
        if optional and not raw.strip():
            return None
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}]
            ) from None
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None

    return dependency


def body_docs(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body of ``model`` (its definitions inlined), for /docs and clients."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": _inline(schema, definitions)}},
        }
    }


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with each local ``$ref`` replaced by the definition it names (the models are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
