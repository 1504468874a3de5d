"""Schemathesis over the OpenAPI document (issue 8, item 1).

Generic over whatever the document lists: every ``/api/v1`` operation (the analyst, audit, feed
and collection APIs as they land) and every ``/taxii2`` operation, called in-process through the
ASGI transport with positive and negative examples, as several principals (none, partner,
analyst, auditor, admin). Every answer: never a 5xx, no internals, errors in the family's format
(RFC 9457 problem+json under /api/v1, TAXII error messages under /taxii2), and a refused request
leaves every data table's row count unchanged.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import TAXII
from tests.hardening import tally
from tests.hardening.conftest import row_counts
from tests.taxii.helpers import LEAKS

EXAMPLES_PER_OPERATION = 12
PROBLEM = "application/problem+json"
FAMILIES = {"api_v1": r"^/api/v1/", "taxii": r"^/taxii2/"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _operations(app, family: str) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=FAMILIES[family])
    return [result.ok() for result in schema.get_all_operations()]


def _check(response, path: str, before: dict, after) -> None:
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    # A problem's "instance" echoes the request path, which the fuzzer may fill with a leak word
    # ("/api/v1/items/stix_object/revoke"): only what the server added may not name its internals.
    added_by_server = response.text.replace(path, "")
    assert not any(leak in added_by_server for leak in LEAKS), (path, response.text[:500])
    content_type = response.headers.get("content-type", "")
    if isinstance(content_type, list):  # schemathesis responses keep every value of a header
        content_type = content_type[0] if content_type else ""
    if response.status_code >= 400:
        if path.startswith("/taxii2"):
            assert content_type == TAXII, (path, content_type)
            body = response.json()
            assert body.get("http_status") == str(response.status_code) and body.get("title")
        else:
            assert content_type.startswith(PROBLEM), (path, response.status_code, content_type)
            body = response.json()
            assert body.get("status") == response.status_code and body.get("title")
        assert after() == before, f"refused {path} changed the database"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_schema_fuzz(app, auth, family):
    operations = _operations(app, family)
    if not operations:
        pytest.skip(f"the OpenAPI document lists no {FAMILIES[family]} operations yet")
    principals = {
        "none": {},
        "partner": auth(subject="usa-feed", nation="USA", roles=("partner",)),
        "analyst": auth(),
        "auditor": auth(subject="auditor-1", roles=("auditor",)),
        "admin": auth(subject="admin-1", roles=("admin",)),
    }
    counts = lambda: row_counts(app.state.engine)  # noqa: E731
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @hsettings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, who=st.sampled_from(sorted(principals)))
        def run(case, who):
            headers = {name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"}
            headers |= {k: v for k, v in principals[who].items() if k == "Authorization"}
            before = counts()
            response = case.call(headers=headers)
            path = case.formatted_path
            try:
                _check(response, path, before, counts)
            except AssertionError as exc:
                raise AssertionError(f"{case.method} {path} as {who}: {exc}") from None
            tally.add(f"inputs tried: schemathesis {family}")

        run()
    tally.add(f"schemathesis operations covered: {family}", len(operations))
