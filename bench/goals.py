"""Issue 22's goals, each as a ratio with its verdict, from the results the benches wrote in one run.

Reads ``peers.json`` (pull, limit, audit share, ingest, memory), ``cli-start.json``, ``load.json``
(concurrency, scale-out, the ceiling through HTTP), ``audit-ceiling.json`` (the head row's own
ceiling) and ``live.json`` (live-stream latency) from a results
directory and writes ``goals.md`` and ``goals.json`` beside them. A file that is missing makes its
goals "not measured", never "met".

    .venv/bin/python bench/goals.py                    # bench/results
    .venv/bin/python bench/goals.py --results /tmp/r   # another run's results
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PULL_OF_LIMIT = 0.80
AUDIT_SHARE = 0.15
INGEST_GOAL = {"sqlite": 10_000, "postgresql": 5_000}
MEMORY_GROWTH = 1.2
CLI_RATIO = 15.0
AUDIT_CEILING = 2_000.0
LIVE_P95_S = 1.0

Row = dict[str, Any]


def _row(goal: str, where: str, measured: str, ratio: float | None, target: str, met: bool | str | None) -> Row:
    """One goal's line; ``met`` is a verdict, None when nothing was measured, or a word of its own."""
    verdict = met if isinstance(met, str) else "not measured" if met is None else "met" if met else "not met"
    return {
        "goal": goal,
        "where": where,
        "measured": measured,
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "verdict": verdict,
    }


def limit_objects_per_s(run: Row) -> float | None:
    """What a pull can reach: the query and the transfer in series, 1 / (1/raw-SQL + 1/HTTP floor)."""
    floor = run.get("http_floor")
    if not floor:
        return None
    return 1 / (1 / run["raw_sql"]["objects_per_s"] + 1 / floor["objects_per_s"])


def peer_rows(peers: Row) -> Iterator[Row]:
    """Pull against the limit, the audit record's share of a page, ingest and memory, per store and N."""
    for run in peers.get("runs", []):
        where, tearline = f"{run['database']} N={run['n']:,}", run["tearline"]
        limit = limit_objects_per_s(run)
        if limit is not None:
            share = tearline["objects_per_s"] / limit
            yield _row(
                "pull / limit",
                where,
                f"{tearline['objects_per_s']:,.0f} of {limit:,.0f} obj/s",
                share,
                f">= {PULL_OF_LIMIT:.2f}",
                share >= PULL_OF_LIMIT,
            )
        server, audit = tearline.get("server_ms_per_page_median"), tearline.get("audit_ms_per_page_median")
        if server and audit is not None:
            yield _row(
                "audit record / page server time",
                where,
                f"{audit} of {server} ms",
                audit / server,
                f"<= {AUDIT_SHARE:.2f}",
                audit / server <= AUDIT_SHARE,
            )
        goal = INGEST_GOAL.get(run["database"])
        if goal:
            rate = run["load"]["objects_per_s"]
            yield _row("ingest obj/s", where, f"{rate:,.0f} obj/s", rate / goal, f">= {goal:,}", rate >= goal)
    yield from _memory_rows(peers.get("runs", []))


def _memory_rows(runs: list[Row]) -> Iterator[Row]:
    """Memory flat in N, as far as one bench process shows it: the pull itself must not grow the
    process (peak during the warm pull against the RSS just before it), at every N. The RSS of a
    larger store's pull is also reported against 10k's, without a verdict: the server runs inside
    the bench process, whose RSS also holds what the ingest left and SQLite's page caches (up to
    TEARLINE_SQLITE_CACHE_MIB per connection), which grow with the store up to their bound."""
    by_store: dict[str, list[Row]] = {}
    for run in runs:
        tearline = run["tearline"]
        if not tearline.get("rss_peak_mib") or not tearline.get("rss_before_mib"):
            continue
        by_store.setdefault(run["database"], []).append(run)
        peak, before = tearline["rss_peak_mib"], tearline["rss_before_mib"]
        yield _row(
            "RSS growth during a pull (peak / before)",
            f"{run['database']} N={run['n']:,}",
            f"{before:,.0f} -> {peak:,.0f} MiB",
            peak / before,
            f"<= {MEMORY_GROWTH}",
            peak / before <= MEMORY_GROWTH,
        )
    for store, measured in by_store.items():
        measured.sort(key=lambda run: run["n"])
        base = next((run for run in measured if run["n"] == 10_000), measured[0])
        for run in (run for run in measured if run["n"] > base["n"]):
            peak, base_peak = run["tearline"]["rss_peak_mib"], base["tearline"]["rss_peak_mib"]
            yield _row(
                f"process RSS during pull, N / {base['n']:,} (bench process, see docstring)",
                f"{store} N={run['n']:,}",
                f"{peak:,.0f} vs {base_peak:,.0f} MiB",
                peak / base_peak,
                f"<= {MEMORY_GROWTH}",
                "reported (no verdict)",
            )


def cli_rows(cli: Row | None) -> Iterator[Row]:
    """Start time of commands that do not touch the app, against ``python -c pass``."""
    if cli is None:
        yield _row("CLI start / python -c pass", "", "", None, f"<= {CLI_RATIO:g}", None)
        return
    for name, figures in cli["commands"].items():
        if name == "python -c pass":
            continue
        ratio = figures["ratio"]
        yield _row(
            "CLI start / python -c pass",
            name,
            f"{figures['median_ms']} ms",
            ratio,
            f"<= {CLI_RATIO:g}",
            ratio <= CLI_RATIO,
        )


def load_rows(load: Row | None) -> Iterator[Row]:
    """Concurrency (PostgreSQL against SQLite), scale-out and the audit ceiling, from bench/load.py."""
    if load is None:
        for goal in ("PostgreSQL / SQLite pages/s under load", "audit records/s ceiling"):
            yield _row(goal, "", "", None, "", None)
        return
    verdicts = load["verdicts"]
    for name, target in (("throughput", ">= 1"), ("p95", "<= 1")):
        ratio = verdicts.get(f"pg_sqlite_{name}_ratio")
        met = verdicts.get(f"pg_sqlite_{name}_met")
        yield _row(f"PostgreSQL / SQLite {name} under load", "1 instance each", "", ratio, target, met)
    for scale in verdicts.get("scale_out", []):
        yield _row(
            "PostgreSQL pages/s, instances / 1",
            f"{scale['instances']} instances",
            f"audit ceiling x{scale['ceiling_ratio']}",
            scale["pages_ratio"],
            "> 1",
            None if scale["pages_ratio"] is None else scale["pages_ratio"] > 1,
        )
    for ceiling in verdicts.get("ceiling", []):
        rate = ceiling["records_per_s"]
        yield _row(
            "audit records/s ceiling (HTTP)",
            f"{ceiling['database']} x{ceiling['instances']}",
            f"{rate:,.0f} records/s",
            rate / AUDIT_CEILING,
            f">= {AUDIT_CEILING:,.0f}",
            ceiling["met"],
        )
    yield _row("load correct (0 errors, 0 leaks, a record per answer)", "", "", None, "yes", verdicts.get("correct"))


def ceiling_rows(ceiling: Row | None) -> Iterator[Row]:
    """The head row's own ceiling, without HTTP (bench/audit_ceiling.py)."""
    if ceiling is None:
        yield _row("audit records/s ceiling (group commit, no HTTP)", "", "", None, f">= {AUDIT_CEILING:,.0f}", None)
        return
    for run in ceiling["runs"]:
        rate = run["group_commit_records_per_s"]
        yield _row(
            "audit records/s ceiling (group commit, no HTTP)",
            f"{run['database']}, {run['threads']} writers",
            f"{rate:,.0f} records/s (one transaction each: {run['one_transaction_each_records_per_s']:,.0f})",
            rate / AUDIT_CEILING,
            f">= {AUDIT_CEILING:,.0f}",
            rate >= AUDIT_CEILING and run["chain_verified"],
        )


def live_rows(live: Row | None) -> Iterator[Row]:
    """Live-stream latency from bench/live.py."""
    if live is None:
        yield _row("live stream p95 latency", "", "", None, f"<= {LIVE_P95_S:g} s", None)
        return
    yield from (_row(**row) for row in live.get("goals", []))


def _read(path: Path) -> Row | None:
    return json.loads(path.read_text()) if path.exists() else None


def scoreboard(results: Path) -> list[Row]:
    """Every goal's row, from whatever results ``results`` holds."""
    peers = _read(results / "peers.json") or {}
    return [
        *peer_rows(peers),
        *cli_rows(_read(results / "cli-start.json")),
        *load_rows(_read(results / "load.json")),
        *ceiling_rows(_read(results / "audit-ceiling.json")),
        *live_rows(_read(results / "live.json")),
    ]


def markdown(rows: list[Row]) -> str:
    """The scoreboard as a table."""
    lines = ["| goal | where | measured | ratio | target | verdict |", "|---|---|---|---:|---|---|"]
    for row in rows:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['goal']} | {row['where']} | {row['measured']} | {ratio} | {row['target']} | {row['verdict']} |"
        )
    met = sum(row["verdict"] == "met" for row in rows)
    lines += ["", f"{met} of {len(rows)} met."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write goals.md and goals.json into the results directory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = scoreboard(args.results)
    (args.results / "goals.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.results / "goals.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
