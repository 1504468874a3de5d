"""Short load run in CI (issue 8, item 4): 20 partners pulling, 2 analysts posting, on a live server.

0 errors and 0 leaks (each partner's received objects checked against the oracle). The page
latency is reported, never asserted (speed lives in bench/). ``TEARLINE_LOAD_SECONDS`` lengthens it.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.conftest import PARTNERS
from tests.hardening import tally
from tests.hardening.load import run_load
from tests.policy.oracle import Principal

pytestmark = pytest.mark.e2e
DURATION_S = float(os.environ.get("TEARLINE_LOAD_SECONDS", "10"))
CLIENTS_PER_NATION = 4  # 5 partner nations x 4 = 20 partners


def test_load_has_no_errors_and_no_leaks(settings, server_factory, collection, auth):
    server = server_factory(settings)
    partners = [
        (
            Principal(nation, clearance, False),
            auth(subject=f"{nation.lower()}-feed-{n}", nation=nation, roles=("partner",)),
        )
        for nation, clearance, _ in PARTNERS
        for n in range(CLIENTS_PER_NATION)
    ]
    analysts = [auth(subject="analyst-a"), auth(subject="analyst-b")]
    result = asyncio.run(
        run_load(
            server.base_url,
            collection.id,
            partner_headers=partners,
            analyst_headers=analysts,
            duration_s=DURATION_S,
            api_root=settings.api_root,
        )
    )
    tally.figure(f"load ({settings.database_url.split(':')[0]})", result.summary())
    assert not result.errors, result.errors[:5]
    assert not result.leaks, result.leaks[:5]
    assert result.posted > 0 and result.pages >= len(partners) and result.objects_received > 0
