"""Fixtures of the observability tests: STIX objects to post and a way to read one metric."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.conftest import TAXII

TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


def indicator(*, shared: bool = True) -> dict:
    """A new indicator; ``shared`` marks it TLP:GREEN (every partner may see it)."""
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-20T09:00:00.000Z",
        "modified": "2026-11-20T09:00:00.000Z",
        "name": "metrics test",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T09:00:00Z",
    }
    if shared:
        obj["object_marking_refs"] = [TLP_GREEN]
    return obj


def post_objects(client, api: str, collection_id: str, headers: dict, objects: list[dict]):
    return client.post(
        f"{api}/collections/{collection_id}/objects/",
        json={"objects": objects},
        headers={**headers, "Content-Type": TAXII},
    )


@pytest.fixture
def sample(app) -> Callable[..., float]:
    """``sample(name, **labels)``: the current value of one series of the app's registry (0 if absent)."""

    def _value(name: str, **labels: str) -> float:
        return app.state.metrics.registry.get_sample_value(name, labels) or 0.0

    return _value
