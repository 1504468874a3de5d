"""Request and response bodies of the recall routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["destroy", "do-not-disseminate", "quarantine"]
Timestamp = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$", max_length=40)


class RecallRequest(BaseModel):
    """Recall versions of an item from every partner nation."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="Sent to the recipients as written.")
    action: Action = "destroy"
    versions: list[str] | None = Field(
        default=None, min_length=1, max_length=1000, description="Versions (modified) to recall; all when absent."
    )
    collection: str | None = Field(default=None, max_length=255)


class RecallOut(BaseModel):
    """What a recall did."""

    recall_id: str = Field(description="The recall, on record even when no partner had received a recalled version.")
    object_id: str
    collection: str
    versions: list[str] = Field(description="The versions withdrawn from every partner.")
    notified: list[str] = Field(description="The nations that received one of them, each sent one notice.")
    derived_notified: list[str] = Field(
        description="The nations notified of tearlines derived from the item (recalled with it), with a fixed reason."
    )


class NoticeOut(BaseModel):
    """One recall notice addressed to the requester's nation."""

    notice_id: str
    notice_version: str
    recall_id: str
    recalled_object: str
    recalled_versions: list[str]
    reason: str
    action: str
    issued: str
    acknowledged: str | None
    acknowledged_by: str | None


class NoticeList(BaseModel):
    """The requester's recall notices, newest first."""

    notices: list[NoticeOut]


class Acknowledgement(BaseModel):
    """A notice's acknowledgement (the first one stands)."""

    notice_id: str
    recall_id: str
    acknowledged: str
    acknowledged_by: str
