"""Request bodies of the disclosure routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ReviewIds = Field(min_length=1, max_length=1000, description="Review ids (from the queue); a batch is all or nothing.")


class DecisionRequest(BaseModel):
    """One decision on one or more held items."""

    model_config = ConfigDict(extra="forbid")

    reviews: list[str] = ReviewIds
    action: Literal["release", "narrow", "tearline", "decline"] = Field(
        description="release as marked; narrow: release a new version marked `banner`; tearline: release a derived "
        "object at `banner` without what is marked above it; decline: partners never receive it."
    )
    reason: str = Field(min_length=1, max_length=2000, description="On record; shown to the item's analyst.")
    banner: str | None = Field(
        default=None,
        max_length=500,
        description="narrow and tearline: the label to release at, no wider than the marking.",
    )


class PreviewRequest(BaseModel):
    """The held items to preview together (one union, per partner)."""

    model_config = ConfigDict(extra="forbid")

    reviews: list[str] = ReviewIds
