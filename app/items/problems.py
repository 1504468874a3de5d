"""Refusals of the analyst API: one RFC 9457 problem carrying every offending field with its path.

Paths are dotted, with list indices in brackets, relative to the request body:
``pattern``, ``field_banners.description``, ``stix.objects[2].valid_from``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, Field

from app.http.errors import ApiError


@dataclass(frozen=True)
class FieldError:
    """One reason a request is refused, and where in the request it lies."""

    path: str
    message: str


def join_path(base: str, *steps: str | int) -> str:
    """``base`` extended by property names and list indices (``objects`` + 2 -> ``objects[2]``)."""
    path = base
    for step in steps:
        if isinstance(step, int):
            path = f"{path}[{step}]"
        else:
            path = f"{path}.{step}" if path else str(step)
    return path


class ItemRefused(ApiError):
    """422 listing every field error; raised before anything is stored, or to roll the request back."""

    def __init__(
        self, errors: list[FieldError], status: int = 422, lead: str = "The request was refused and nothing was stored"
    ) -> None:
        summary = "; ".join(f"{e.path or '(request)'}: {e.message}" for e in errors[:5])
        if len(errors) > 5:
            summary += f"; and {len(errors) - 5} more"
        super().__init__(status, f"{lead}: {summary}", extensions={"errors": [asdict(e) for e in errors]})
        self.errors = errors


def refuse(path: str, message: str, status: int = 422) -> ItemRefused:
    """A refusal naming one field."""
    return ItemRefused([FieldError(path, message)], status=status)


class FieldErrorOut(BaseModel):
    """One entry of a problem's ``errors``."""

    path: str = Field(
        description="Dotted path in the request body, e.g. `stix.objects[2].pattern`; empty for the request as a whole."
    )
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is returned (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldErrorOut] | None = Field(None, description="Per-field reasons, on 400 and 422.")


def problem_responses(**descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given statuses (``s404="No such item"``), all problem+json."""
    return {
        int(status[1:]): {"model": Problem, "description": description, "content": {"application/problem+json": {}}}
        for status, description in descriptions.items()
    }
