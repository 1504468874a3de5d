"""Helpers of the recall tests: partner headers by nation, pulls, and the notices a nation received."""

from __future__ import annotations

from collections.abc import Callable

from tests.taxii.helpers import objects_url, walk

RECALL_EXTENSION = "extension-definition--f26d88c0-42b3-4104-b413-3eb488ceba1e"


class Nations:
    """Request headers of one partner principal per nation (``nations["FRA"]``) and of the home analyst."""

    def __init__(self, auth: Callable[..., dict]) -> None:
        self._auth = auth
        self._cache: dict[str, dict] = {}
        self.home = auth()

    def __getitem__(self, nation: str) -> dict:
        if nation not in self._cache:
            self._cache[nation] = self._auth(subject=f"{nation.lower()}-recall", nation=nation, roles=("partner",))
        return self._cache[nation]


def pull(client, api: str, collection_id: str, headers: dict, version: str = "last") -> list[dict]:
    """Every object a full pull serves (all pages)."""
    pages = walk(client, objects_url(api, collection_id), headers, {"match[version]": version})
    return [o for page in pages for o in page.get("objects", [])]


def notices_for(client, api: str, collection_id: str, headers: dict) -> list[dict]:
    """The recall notices a full pull serves this principal."""
    return [
        o
        for o in pull(client, api, collection_id, headers)
        if o["type"] == "note" and RECALL_EXTENSION in (o.get("extensions") or {})
    ]
