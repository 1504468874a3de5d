"""Bounded load: partners pulling and analysts posting on a live server, checked against the oracle.

20 partner clients (four subjects for each registered partner nation) walk a collection's objects
page by page while 2 analysts post indicators under assorted markings, for a fixed duration.
Every object a partner receives is checked against :mod:`tests.policy.oracle` (a leak is a
version the oracle withholds from that partner); every answer other than 200/202 is an error.

Short run (CI): ``tests/hardening/test_load.py`` (``TEARLINE_LOAD_SECONDS``, default 10).
Long run, against a server you started (``tearline serve``) with partners registered::

    python -m tests.hardening.load --base-url http://127.0.0.1:8000 --collection <id> \
        --partner-token USA=<jwt> ... --analyst-token <jwt> --duration 600
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import typer

from tests.policy.oracle import (
    Marking,
    Principal,
    VersionSpec,
    build_markings,
    may_see_version,
)
from tests.taxii.helpers import indicator

TAXII = "application/taxii+json;version=2.1"
HOME = "NLD"
PAGE_LIMIT = 50
# What the analysts write: (classification marking or None, TLP or None).
SPECS = [
    VersionSpec(tlp="1.0:green"),
    VersionSpec(tlp="1.0:amber"),
    VersionSpec(tlp="2.0:red"),
    VersionSpec(markings=(Marking("statement", 3, "SECRET", ("FVEY",), False),)),
    VersionSpec(markings=(Marking("statement", 2, "CONFIDENTIAL", ("NATO",), False),)),
    VersionSpec(markings=(Marking("statement", 0, "UNCLASSIFIED", ("EU",), False),)),
    VersionSpec(markings=(Marking("statement", 1, "RESTRICTED", ("USA", "CAN"), True),)),
    VersionSpec(),
]


@dataclass
class LoadResult:
    """What a run measured."""

    duration_s: float = 0.0
    pages: int = 0
    objects_received: int = 0
    posted: int = 0
    reconnects: int = 0  # requests resent after the server closed an idle keep-alive connection
    errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def p95_ms(self) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=20)[-1]

    def summary(self) -> str:
        return (
            f"{self.duration_s:.0f}s: {self.pages} pages ({self.pages / max(self.duration_s, 1e-9):.1f}/s), "
            f"{self.objects_received} objects received, {self.posted} posted, {len(self.errors)} errors, "
            f"{len(self.leaks)} leaks, {self.reconnects} reconnects, page latency p50 "
            f"{statistics.median(self.latencies_ms) if self.latencies_ms else 0:.0f} ms, "
            f"p95 {self.p95_ms():.0f} ms"
        )


async def _request(client: httpx.AsyncClient, result: LoadResult, method: str, url: str, **kwargs) -> httpx.Response:
    """Send once; if the server closed an idle keep-alive connection as the request went out (a race
    every HTTP/1.1 client meets), send again on a new connection. Both requests are idempotent here
    (GETs, and TAXII POSTs of the same objects, where an exact duplicate is a success). A server that
    is really gone fails the second attempt too, and the error propagates."""
    try:
        return await client.request(method, url, **kwargs)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        result.reconnects += 1
        return await client.request(method, url, **kwargs)


async def _analyst(
    client: httpx.AsyncClient,
    url: str,
    headers: dict,
    specs: dict[str, VersionSpec],
    result: LoadResult,
    deadline: float,
    rng: random.Random,
) -> None:
    while time.monotonic() < deadline:
        objects = []
        for _ in range(5):
            spec = rng.choice(SPECS)
            built = build_markings(spec, HOME, None)
            obj = indicator(object_marking_refs=built.object_marking_refs) if built.object_marking_refs else indicator()
            specs[obj["id"]] = spec  # known to the oracle before any partner could receive it
            objects.extend([*built.definitions, obj])
        response = await _request(
            client,
            result,
            "POST",
            url,
            content=json.dumps({"objects": objects}),
            headers=headers | {"Content-Type": TAXII},
        )
        if response.status_code != 202 or response.json().get("failure_count"):
            result.errors.append(f"POST {response.status_code}: {response.text[:200]}")
        else:
            result.posted += 5


async def _partner(
    client: httpx.AsyncClient,
    url: str,
    headers: dict,
    principal: Principal,
    specs: dict[str, VersionSpec],
    result: LoadResult,
    deadline: float,
) -> None:
    while time.monotonic() < deadline:
        params: dict = {"limit": PAGE_LIMIT, "match[type]": "indicator"}
        while True:
            started = time.perf_counter()
            response = await _request(client, result, "GET", url, headers=headers, params=params)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.pages += 1
            if response.status_code != 200:
                result.errors.append(f"GET {response.status_code}: {response.text[:200]}")
                break
            body = response.json()
            for obj in body.get("objects", []):
                result.objects_received += 1
                spec = specs.get(obj["id"])
                if spec is None or not may_see_version(principal, spec, HOME):
                    result.leaks.append(f"{principal.name} received {obj['id']}")
            if not body.get("more"):
                break
            params = params | {"next": body["next"]}


async def run_load(
    base_url: str | Sequence[str],
    collection_id: str,
    *,
    partner_headers: list[tuple[Principal, dict]],
    analyst_headers: list[dict],
    duration_s: float,
    api_root: str = "api1",
    seed: int = 8,
    known: Mapping[str, VersionSpec] | None = None,
) -> LoadResult:
    """Run partners and analysts against ``base_url`` for ``duration_s`` seconds.

    ``base_url`` may list several instances on one database (bench/load.py's scale-out): analysts,
    then partners, are spread round-robin over them. ``known`` gives the markings of objects already
    in the collection (a preload), so that the oracle can judge them; without it the collection
    must start empty.
    """
    bases = [base_url] if isinstance(base_url, str) else list(base_url)
    urls = [f"{base}/taxii2/{api_root}/collections/{collection_id}/objects/" for base in bases]
    specs: dict[str, VersionSpec] = dict(known or {})
    result = LoadResult()
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=len(partner_headers) + len(analyst_headers) + 4)
    started = time.monotonic()
    deadline = started + duration_s
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(
                _analyst(client, urls[n % len(urls)], headers, specs, result, deadline, rng)
                for n, headers in enumerate(analyst_headers)
            ),
            *(
                _partner(client, urls[n % len(urls)], headers, principal, specs, result, deadline)
                for n, (principal, headers) in enumerate(partner_headers)
            ),
        )
    result.duration_s = time.monotonic() - started
    return result


def main(
    base_url: str = typer.Option(..., help="Server base URL, e.g. http://127.0.0.1:8000"),
    collection: str = typer.Option(..., help="Collection id partners read and analysts write."),
    partner_token: list[str] = typer.Option(..., help="NATION:CLEARANCE-RANK=JWT, e.g. USA:3=eyJ...; repeat."),
    analyst_token: list[str] = typer.Option(..., help="An analyst JWT; repeat for more analysts."),
    copies: int = typer.Option(4, help="Concurrent clients per partner token."),
    duration: float = typer.Option(60.0, help="Seconds to run."),
) -> None:
    """Run the load against a server you started; exits 1 on any error or leak."""
    partners = []
    for item in partner_token:
        who, _, token = item.partition("=")
        nation, _, rank = who.partition(":")
        principal = Principal(nation, int(rank), False)
        partners += [(principal, {"Authorization": f"Bearer {token}", "Accept": TAXII})] * copies
    analysts = [{"Authorization": f"Bearer {token}", "Accept": TAXII} for token in analyst_token]
    result = asyncio.run(
        run_load(base_url, collection, partner_headers=partners, analyst_headers=analysts, duration_s=duration)
    )
    typer.echo(result.summary())
    for problem in (result.errors + result.leaks)[:20]:
        typer.echo(problem, err=True)
    raise typer.Exit(1 if result.errors or result.leaks else 0)


if __name__ == "__main__":
    typer.run(main)
