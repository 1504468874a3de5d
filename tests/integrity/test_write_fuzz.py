"""Partners posting ids, definitions and references they computed or guessed (issue 18, write fuzzing).

Each example is a pair of posts by FRA that differ only in what FRA cannot tell apart: one
aimed at something stored and hidden from FRA, the other at something FRA may see, or at
something absent. The two status resources must be the same once the posted ids and the
request's own id and time are set aside, and no answer may name a nation FRA did not name itself.
After every example the home nation's objects are exactly as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from app.markings.labels import label_marking_definition, parse_banner
from tests.conftest import HOME
from tests.integrity.conftest import indicator, statement
from tests.integrity.test_ownership import TLP_WHITE, _normalised, push

FUZZ = hsettings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KINDS = ("new version of a foreign object", "reference", "canonical definition", "planted statement")
OTHER_NATIONS = ("NLD", "USA", "GBR", "DEU", "CAN")


@dataclass
class Stored:
    """What the home nation stored before FRA starts guessing."""

    hidden: dict  # an indicator FRA may not see
    visible: dict  # an indicator FRA may see
    hidden_definition: dict  # a statement marking FRA may not see
    banner_in_use: str  # hidden from FRA
    banner_unused: str


@pytest.fixture
def stored(app, client, headers_for, writable) -> Stored:
    mappings = app.state.mappings

    def label(banner: str) -> dict:
        return label_marking_definition(parse_banner(banner, originator=HOME, mappings=mappings), mappings)

    secret, open_fra, in_use = (
        label("SECRET//REL TO USA"),
        label("UNCLASSIFIED//REL TO FRA"),
        label("CONFIDENTIAL//REL TO GBR"),
    )
    hidden, visible = indicator("hidden", secret["id"]), indicator("visible", open_fra["id"])
    hidden_definition = statement("SECRET//REL TO USA")
    objects = [secret, open_fra, in_use, hidden, visible, hidden_definition, indicator("in use", in_use["id"])]
    assert push(client, headers_for(), writable.id, objects)["failure_count"] == 0
    return Stored(hidden, visible, hidden_definition, "CONFIDENTIAL//REL TO GBR", "CONFIDENTIAL//REL TO CAN, GBR")


def _pair(kind: str, stored: Stored, app, data) -> tuple[list[dict], list[dict], list[str], list[str]]:
    """Two envelopes FRA must not be able to tell apart, and the ids each names."""
    mappings = app.state.mappings
    if kind == "new version of a foreign object":
        later = data.draw(st.sampled_from(["", "2026-12-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z"]))
        marking = data.draw(st.sampled_from([[TLP_WHITE], []]))
        author = data.draw(st.sampled_from([None, "identity--b8c437b9-2570-4b4c-953b-220dbd3fabf3"]))

        def attempt(target: dict) -> dict:
            obj = target | {"name": data.draw(st.text(min_size=1, max_size=20)), "object_marking_refs": marking}
            obj = {k: v for k, v in obj.items() if v != []}
            if later:
                obj["modified"] = later
            if author:
                obj["created_by_ref"] = author
            return obj

        a, b = attempt(stored.hidden), attempt(stored.visible)
        return [a], [b], [a["id"]], [b["id"]]
    if kind == "reference":
        absent = f"marking-definition--{uuid.uuid4()}"
        a = indicator("ref", stored.hidden_definition["id"])
        b = indicator("ref", absent)
        return [a], [b], [a["id"], stored.hidden_definition["id"]], [b["id"], absent]

    def canonical(banner: str) -> dict:
        return label_marking_definition(parse_banner(banner, originator=HOME, mappings=mappings), mappings)

    used, unused = canonical(stored.banner_in_use), canonical(stored.banner_unused)
    if kind == "canonical definition":
        return [used], [unused], [used["id"]], [unused["id"]]
    planted = statement(data.draw(st.sampled_from(["UNCLASSIFIED//REL TO FRA", "UNCLASSIFIED", "SECRET//REL TO FRA"])))
    return [planted | {"id": used["id"]}], [planted | {"id": unused["id"]}], [used["id"]], [unused["id"]]


def _home_objects(engine) -> list[tuple]:
    with engine.connect() as connection:
        return sorted(
            connection.execute(
                text("SELECT object_id, version_us, label_id, body FROM stix_object WHERE originator = :h"), {"h": HOME}
            ).all()
        )


def test_guessing_partners_learn_nothing_and_change_nothing(app, client, headers_for, writable, stored):
    fra = headers_for(subject="fra-feed", nation="FRA", roles=("partner",))
    before = _home_objects(app.state.engine)

    @FUZZ
    @given(kind=st.sampled_from(KINDS), data=st.data())
    def example(kind: str, data) -> None:
        first, second, first_ids, second_ids = _pair(kind, stored, app, data)
        answers = [
            _normalised(push(client, fra, writable.id, envelope), *ids)
            for envelope, ids in ((first, first_ids), (second, second_ids))
        ]
        assert answers[0] == answers[1], (kind, answers)
        for nation in OTHER_NATIONS:  # a nation named in an answer was named by FRA itself
            assert nation not in str(answers[0]) or nation in str(first), (kind, answers[0])
        assert (
            client.get(
                f"/taxii2/api1/collections/{writable.id}/objects/{stored.hidden['id']}/",
                headers=fra | {"Accept": "*/*"},
            ).status_code
            == 404
        )

    example()
    assert _home_objects(app.state.engine) == before
