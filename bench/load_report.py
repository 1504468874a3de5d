"""Verdicts and the Markdown report of ``bench/load.py``.

The speed verdicts are ratios to a baseline of the same run, as the issue asks: PostgreSQL's load
against SQLite's (1 instance each), 2 instances against 1 on PostgreSQL. The audit ceiling is held
against the issue's absolute goal of 2,000 records/s.
"""

from __future__ import annotations

from typing import Any

CEILING_GOAL = 2000  # records/s, the threshold for the audit head row


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def _find(runs: list[dict[str, Any]], database: str, instances: int) -> dict[str, Any] | None:
    return next((r for r in runs if r["database"] == database and r["instances"] == instances), None)


def _correct(run: dict[str, Any]) -> bool:
    load, ceiling = run["load"], run["ceiling"]
    return bool(
        not load["errors"]
        and not load["leaks"]
        and ceiling["records_match"]
        and run["chain"]["ok"]
        and not run["servers_killed"]
    )


def verdicts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios and goals: PG against SQLite (throughput >= 1, p95 <= 1), scale-out, ceiling, correctness."""
    result: dict[str, Any] = {"correct": all(_correct(run) for run in runs)}
    sqlite, pg = _find(runs, "sqlite", 1), _find(runs, "postgresql", 1)
    if sqlite and pg:
        throughput = _ratio(pg["load"]["pages_per_s"], sqlite["load"]["pages_per_s"])
        p95 = _ratio(pg["load"]["p95_ms"], sqlite["load"]["p95_ms"])
        result["pg_sqlite_throughput_ratio"] = throughput
        result["pg_sqlite_throughput_met"] = throughput is not None and throughput >= 1
        result["pg_sqlite_p95_ratio"] = p95
        result["pg_sqlite_p95_met"] = p95 is not None and p95 <= 1
    if pg:
        result["scale_out"] = [
            {
                "instances": run["instances"],
                "pages_ratio": _ratio(run["load"]["pages_per_s"], pg["load"]["pages_per_s"]),
                "ceiling_ratio": _ratio(run["ceiling"]["records_per_s"], pg["ceiling"]["records_per_s"]),
            }
            for run in runs
            if run["database"] == "postgresql" and run["instances"] > 1
        ]
    result["ceiling"] = [
        {
            "database": run["database"],
            "instances": run["instances"],
            "records_per_s": run["ceiling"]["records_per_s"],
            "met": run["ceiling"]["records_per_s"] >= CEILING_GOAL,
        }
        for run in runs
    ]
    return result


def _yes(met: bool) -> str:
    return "**met**" if met else "**not met**"


def _load_rows(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| store | instances | pages/s | p50 ms | p95 ms | objects received | posted | errors | leaks | reconnects "
        "| server CPU s | client CPU s | machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        load, usage = run["load"], run["load"]["usage"]
        rows.append(
            f"| {run['database']} | {run['instances']} | {load['pages_per_s']} | {load['p50_ms']} | {load['p95_ms']} "
            f"| {load['objects_received']:,} | {load['posted']:,} | {load['errors']} | {load['leaks']} "
            f"| {load['reconnects']} | {usage['server_cpu_s']} | {usage['client_cpu_s']} | {usage['machine_busy']:.0%} |"
        )
    return rows


def _ceiling_rows(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| store | instances | clients | records/s | p50 ms | p95 ms | audit wait ms | answered 200 | records (200) "
        "| other answers | broken | server CPU s | client CPU s | machine busy | chain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        ceiling, usage = run["ceiling"], run["ceiling"]["usage"]
        other = ", ".join(f"{status}: {n}" for status, n in ceiling["other_statuses"].items()) or "none"
        wait = "" if ceiling["audit_wait_mean_ms"] is None else ceiling["audit_wait_mean_ms"]
        chain = "ok" if run["chain"]["ok"] else f"BROKEN ({run['chain']['output']})"
        rows.append(
            f"| {run['database']} | {run['instances']} | {ceiling['clients']} | {ceiling['records_per_s']:,} "
            f"| {ceiling['p50_ms']} | {ceiling['p95_ms']} | {wait} | {ceiling['answered_200']:,} "
            f"| {ceiling['records']['by_status'].get(200, 0):,} | {other} | {ceiling['failures']} "
            f"| {usage['server_cpu_s']} | {usage['client_cpu_s']} | {usage['machine_busy']:.0%} | {chain} |"
        )
    return rows


def _problems(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for run in runs:
        label = f"{run['database']}, {run['instances']} instance(s)"
        load, ceiling = run["load"], run["ceiling"]
        for sample in load["error_samples"] + load["leak_samples"] + ceiling["failure_samples"]:
            lines.append(f"- {label}: {sample}")
        if ceiling["records_missing"] or not ceiling["records_match"]:
            lines.append(
                f"- {label}: {ceiling['records_missing']} answered requests without a record, "
                f"{ceiling['records_unanswered']} records beyond the answers ({ceiling['failures']} broken)"
            )
        if ceiling["other_statuses"]:
            lines.append(f"- {label}: ceiling answers other than 200: {ceiling['other_statuses']}")
        if run["servers_killed"]:
            lines.append(f"- {label}: a server did not stop within the limit and was killed")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The report: the run's conditions, the load and ceiling tables, the verdicts, any problem."""
    env, runs, verdict = result["environment"], result["runs"], result["verdicts"]
    # The code measured may differ from the commit: other work in progress under app/ is named.
    dirty = (
        f" (with uncommitted changes in {len(env['app_uncommitted'])} files of app/)" if env["app_uncommitted"] else ""
    )
    lines = [
        "# Load, scale-out and the audit ceiling (`bench/load.py`)",
        "",
        f"`{result['command']}`, {env['date']}, commit {env['commit'][:12]}{dirty}"
        + f"; {env['cpus']} CPUs, Python {env['python']}; load average {env['load_average'][0]} at the start, "
        f"{env['load_average_end'][0]} at the end; {env['total_s']:.0f} s in all.",
        "",
        f"## Load: 20 partners pulling (pages of 50), 2 analysts posting, {env['seconds']:g} s, "
        f"{env['preload']:,} indicators preloaded",
        "",
        *_load_rows(runs),
        "",
        f"## Audit ceiling: {env['ceiling_clients']} keep-alive clients on `GET /taxii2/`, {env['ceiling_seconds']:g} s",
        "",
        *_ceiling_rows(runs),
        "",
        "## Verdicts",
        "",
    ]
    if "pg_sqlite_throughput_ratio" in verdict:
        lines += [
            f"- PG/SQLite throughput ratio (1 instance each): {verdict['pg_sqlite_throughput_ratio']} "
            f"(goal >= 1): {_yes(verdict['pg_sqlite_throughput_met'])}",
            f"- PG/SQLite p95 ratio: {verdict['pg_sqlite_p95_ratio']} (goal <= 1): {_yes(verdict['pg_sqlite_p95_met'])}",
        ]
    for scale in verdict.get("scale_out", []):
        lines.append(
            f"- PostgreSQL scale-out, {scale['instances']} instances / 1: pages/s x{scale['pages_ratio']}, "
            f"audit ceiling x{scale['ceiling_ratio']}"
        )
    for ceiling in verdict["ceiling"]:
        lines.append(
            f"- audit ceiling, {ceiling['database']} x{ceiling['instances']}: {ceiling['records_per_s']:,} records/s "
            f"(goal >= {CEILING_GOAL:,}): {_yes(ceiling['met'])}"
        )
    lines.append(
        "- correctness (0 errors, 0 leaks, a record for every 200, the chain verifies): "
        + ("**yes**" if verdict["correct"] else "**NO**")
    )
    problems = _problems(runs)
    if problems:
        lines += ["", "## Problems", "", *problems]
    return "\n".join(lines) + "\n"
