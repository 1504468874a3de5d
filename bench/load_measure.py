"""What ``bench/load.py`` measures besides the load itself: the audit ceiling, CPU use, records, the chain.

Everything goes through the servers' HTTP interface, the ``tearline audit verify`` command and a
count of ``audit_record`` rows, never through the audit's Python internals (which may change: the
writer is being made to batch records).

The ceiling's clients speak HTTP/1.1 over asyncio streams directly (keep-alive, one request in
flight per connection) rather than through httpx: on a 2-core machine every CPU second the client
spends is taken from the servers it measures, and with 32 concurrent connections httpx spent about
5 ms of CPU a request against a trivial server, this client 0.04 ms (bench/README.md).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from app.config.settings import REPO_ROOT, Settings
from bench.load_setup import CEILING_SUBJECT, Instance, server_environment
from tests.hardening.load import TAXII

REQUEST_TIMEOUT_S = 60
VERIFY_LIMIT_S = 1800
AUDIT_HISTOGRAM = "tearline_audit_write_duration_seconds"


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``values`` (0 when empty), in their unit, rounded to 0.1."""
    if not values:
        return 0.0, 0.0
    p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
    return round(statistics.median(values), 1), round(p95, 1)


# --- CPU use ---------------------------------------------------------------------------------------


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot (Linux /proc/stat); (0, 0) if unknown."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


class Usage:
    """CPU seconds spent during a phase by the servers, this (client) process and the whole machine.

    The machine figure includes PostgreSQL and whatever else runs beside the bench: it says how
    close to saturated the 2 cores were, so a reader can tell a server limit from a machine limit.
    """

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.wall = time.monotonic()
        self.servers = sum(instance.cpu_seconds() for instance in instances)
        self.client = time.process_time()
        self.machine = _machine_jiffies()
        self.load_before = os.getloadavg()[0]

    def done(self) -> dict[str, Any]:
        """The phase's figures, from construction until now."""
        wall = time.monotonic() - self.wall
        busy, total = _machine_jiffies()
        cpus = os.cpu_count() or 1
        machine_busy = (busy - self.machine[0]) / max(total - self.machine[1], 1)
        return {
            "wall_s": round(wall, 1),
            "server_cpu_s": round(sum(i.cpu_seconds() for i in self.instances) - self.servers, 1),
            "client_cpu_s": round(time.process_time() - self.client, 1),
            "machine_busy": round(machine_busy, 2),  # fraction of all cores
            "machine_cpu_s": round(machine_busy * wall * cpus, 1),
            "load_average_before": round(self.load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        }


# --- the audit ceiling ---------------------------------------------------------------------------


@dataclass
class Ceiling:
    """What the ceiling's clients saw."""

    clients: int
    duration_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0  # connections that broke mid-request: the request may or may not have been served
    failure_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def answered_200(self) -> int:
        """Requests answered 200: each one must have its audit record."""
        return self.statuses[200]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the server closes the connection after it."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF (the last: no trailers sent)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") == "close"


async def _client(port: int, request: bytes, deadline: float, result: Ceiling) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while time.monotonic() < deadline:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    writer.write(request)
                    status, close = await _read_response(reader)
            except (OSError, EOFError, TimeoutError, ValueError, IndexError) as exc:
                # A broken connection is counted, not retried: its request may have been served.
                result.failures += 1
                if len(result.failure_samples) < 5:
                    result.failure_samples.append(f"{type(exc).__name__}: {exc}"[:200])
                writer.close()
                writer = reader = None
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] += 1
            if close:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


async def _hammer(ports: list[int], tokens: list[str], seconds: float) -> Ceiling:
    result = Ceiling(clients=len(tokens))
    started = time.monotonic()
    requests = [
        (
            f"GET /taxii2/ HTTP/1.1\r\nHost: 127.0.0.1:{ports[n % len(ports)]}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: {TAXII}\r\n\r\n"
        ).encode()
        for n, token in enumerate(tokens)
    ]
    await asyncio.gather(
        *(_client(ports[n % len(ports)], request, started + seconds, result) for n, request in enumerate(requests))
    )
    result.duration_s = time.monotonic() - started
    return result


def audit_ceiling(instances: list[Instance], tokens: list[str], seconds: float) -> Ceiling:
    """Every token's client GETs ``/taxii2/`` (discovery: the cheapest audited request, one record
    each) as fast as answers come, for ``seconds``; clients spread round-robin over ``instances``."""
    return asyncio.run(_hammer([instance.port for instance in instances], tokens, seconds))


def audit_histogram(instances: list[Instance]) -> tuple[float, int] | None:
    """Sum (s) and count of the servers' audit write histogram from /metrics, or None without one.

    It is the time a request waited for its record, as the middleware sees it, whatever the writer does.
    """
    total, count, seen = 0.0, 0, False
    for instance in instances:
        try:
            body = httpx.get(f"{instance.base_url}/metrics", timeout=10).text
        except httpx.HTTPError:
            return None
        for line in body.splitlines():
            name, _, value = line.partition(" ")
            metric = name.split("{", 1)[0]
            if metric == f"{AUDIT_HISTOGRAM}_sum":
                total, seen = total + float(value), True
            elif metric == f"{AUDIT_HISTOGRAM}_count":
                count += int(float(value))
    return (total, count) if seen else None


def histogram_mean_ms(before: tuple[float, int] | None, after: tuple[float, int] | None) -> float | None:
    """Mean of the histogram between two readings, in ms (None if either is missing or nothing was observed)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]) * 1000, 2)


# --- after the servers stopped ---------------------------------------------------------------------


def ceiling_records(url: str) -> dict[str, Any]:
    """Audit records of the ceiling's clients by status, and all records, counted in ``audit_record``."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            by_status = {
                int(status): int(count)
                for status, count in connection.execute(
                    text("SELECT status, count(*) FROM audit_record WHERE subject LIKE :prefix GROUP BY status"),
                    {"prefix": f"{CEILING_SUBJECT}%"},
                )
            }
            total = int(connection.execute(text("SELECT count(*) FROM audit_record")).scalar_one())
    finally:
        engine.dispose()
    return {"by_status": by_status, "records": sum(by_status.values()), "all_records": total}


def verify_chain(settings: Settings) -> dict[str, Any]:
    """``tearline audit verify`` on the store (exit 0: the whole chain verifies; 3: broken)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "audit", "verify"],
        cwd=REPO_ROOT,
        env=server_environment(settings),
        capture_output=True,
        text=True,
        timeout=VERIFY_LIMIT_S,
    )
    output = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return {
        "ok": done.returncode == 0,
        "exit_status": done.returncode,
        "output": output[-1][:300] if output else "",
        "seconds": round(time.monotonic() - started, 1),
    }
