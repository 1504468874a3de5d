"""The live benchmark's report: the Markdown of ``bench/results/live.md`` and the issue's goal rows.

Part of ``bench/live.py``; reads only the JSON document it writes, so a result can be re-rendered.
:func:`goal_rows` gives the ``goals`` of ``live.json``, which ``bench/goals.py`` puts in the issue's
report beside the other benches' goals.
"""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def table(document: dict[str, Any]) -> str:
    """One row per (store, S, K): POST, latency from the commit, from the response and from sending."""
    lines = [
        "| store | S | may see | K | repeats | POST p50 ms | p50 ms | p95 ms | max ms | under 1 s "
        "| p95 from response | p95 from sent | latency / POST | verdict (p95 <= 1 s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for store in document["stores"]:
        for block in store["blocks"]:
            if block["refused"]:
                statuses = sorted({str(r["status"]) for r in block["refused"]})
                lines.append(
                    f"| {store['database']} | {block['streams']} | {block['allowed_streams']} | | | | | | | | | | "
                    f"| **REFUSED**: {len(block['refused'])} of {block['streams']} streams ({', '.join(statuses)}) |"
                )
            for c in block["configs"]:
                commit = c["latency_ms"]["from_commit"]
                under = "" if commit["under_1s"] is None else f"{commit['under_1s']:.0%}"
                lines.append(
                    f"| {store['database']} | {block['streams']} | {block['allowed_streams']} | {c['batch']} "
                    f"| {c['repeats']} | {c['post_ms']['p50']} | {_cell(commit['p50'])} | {_cell(commit['p95'])} "
                    f"| {_cell(commit['max'])} | {under} | {_cell(c['latency_ms']['from_response']['p95'])} "
                    f"| {_cell(c['latency_ms']['from_sent']['p95'])} | {_cell(c['ratio_p50_to_post'])} "
                    f"| {c['verdict']} |"
                )
    return "\n".join(lines)


def _details(document: dict[str, Any]) -> list[str]:
    lines = [
        "| store | S | K | cold POST ms | cold max ms | commit -> wake p50 ms | fan-out p50 ms "
        "| slowest stream (p50 ms) | events per delivery |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for store in document["stores"]:
        for block in store["blocks"]:
            for c in block["configs"]:
                slow = c["slowest_stream"]
                slowest = "" if slow is None else f"{slow['nation']} #{slow['stream']} ({slow['p50_from_commit_ms']})"
                events = ", ".join(f"{n}: {times}" for n, times in c["events_per_delivery"].items())
                lines.append(
                    f"| {store['database']} | {block['streams']} | {c['batch']} | {c['cold']['post_ms']} "
                    f"| {_cell(c['cold']['max_from_commit_ms'])} | {c['commit_to_announce_ms_p50']} "
                    f"| {_cell(c['fan_out_ms_p50'])} | {slowest} | {events} |"
                )
    return lines


def _incident(note: dict[str, Any]) -> str:
    """One leak or anomaly on a line: what, which stream, how many objects, and of which (K config, repeat)."""
    if "count" not in note:  # a stream that ended or sent another kind of event
        return f"{note['what']}: stream {note['stream']} ({note['nation']}): {note.get('error') or note.get('data')}"
    example = note["ids"][0] if note["ids"] else ""
    return (
        f"{note['what']}: stream {note['stream']} ({note['nation']}), {note['count']} objects (e.g. {example}), "
        f"posted in (batch config, repeat) {note['in']}"
    )


def _checks(document: dict[str, Any]) -> list[str]:
    lines = []
    for store in document["stores"]:
        for block in store["blocks"]:
            if block["refused"]:
                first = block["refused"][0]
                lines.append(
                    f"- **{store['database']}, S={block['streams']}: {len(block['refused'])} streams refused** after "
                    f"{block['open_ms_max'] / 1000:.1f} s ({block['opened']} opened, holding "
                    f"{block['pool_connections_checked_out_idle']} of the app's pooled database connections); "
                    f"e.g. stream {first['stream']} ({first['nation']}): {first['status']} {first['error']}"
                )
            denied = block["streams"] - block["allowed_streams"]
            lines.append(
                f"- {store['database']}, S={block['streams']}: {denied} streams that may not see the posts received "
                f"{block['received_by_denied_streams']} objects; {len(block['leaks'])} leaks, "
                f"{len(block['anomalies'])} anomalies (ids twice, late, unknown, streams ended); "
                f"streams open in {block['open_ms_max']} ms"
            )
            lines += [f"  - **{_incident(leak)}**" for leak in block["leaks"]]
            lines += [f"  - {_incident(anomaly)}" for anomaly in block["anomalies"][:10]]
        pulls = store["pull_check"]
        wrong = [n for n, v in pulls["nations"].items() if not v["ok"]]
        lines.append(
            f"- {store['database']}: TAXII pulls of the {pulls['posted']} posted objects by each nation "
            + ("agree with the label" if pulls["ok"] else f"**DISAGREE** for {', '.join(wrong)}")
        )
    return lines


def markdown(document: dict[str, Any]) -> str:
    """The whole ``live.md``: what was run, the table, the details and the leak checks."""
    env = document["environment"]
    may = ", ".join(n for n, yes in document["may_see"].items() if yes)
    may_not = ", ".join(n for n, yes in document["may_see"].items() if not yes)
    lines = [
        "# Live-stream latency (`bench/live.py`)",
        "",
        f"`{document['command']}`; {env['machine']}; load average {env['load_average_before']} -> "
        f"{env['load_average_after']}; {env['wall_s']} s.",
        "",
        f"Label {document['label']}: {may} may see the posts; {may_not} may not. S streams round-robin over "
        "those nations (`may see`: how many of the S may). K indicators per POST. Latency: the commit "
        "that stored the post (in process) to the arrival of its last object at each stream that may see "
        "it, over every such stream and timed repeat; `latency / POST` is its p50 over the POST's p50 "
        f"round trip. Goal: {document['goal']}.",
        "",
        table(document),
        "",
        "`cold`: the untimed first repeat of each (S, K); `commit -> wake`: the commit to the app's stored "
        "signal (streams woken); `fan-out`: first to last stream's arrival in a repeat.",
        "",
        *_details(document),
        "",
        "## Checks",
        "",
        *_checks(document),
    ]
    if document["failures"]:
        lines += ["", "## FAILURES", "", *[f"- **{f}**" for f in document["failures"]]]
    return "\n".join(lines) + "\n"


def goal_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows ``bench/goals.py`` reads (its ``_row`` fields): the latency per (store, S, K), and correctness.

    ``ratio`` is the latency over the POST's round trip at p50 (the baseline of the same run); the
    goal itself is absolute: p95 from the commit <= 1 s.
    """
    rows = []
    for store in document["stores"]:
        for block in store["blocks"]:
            where = f"{store['database']} S={block['streams']}"
            if block["refused"]:
                measured = f"{len(block['refused'])} of {block['streams']} streams refused"
                rows.append(_goal("live stream p95 latency, commit -> event", where, measured, None, False))
            for c in block["configs"]:
                commit = c["latency_ms"]["from_commit"]
                measured = f"p95 {commit['p95']} ms (p50 {commit['p50']}, max {commit['max']}); POST p50 {c['post_ms']['p50']} ms"
                met = None if c["verdict"] == "not measured" else c["verdict"] == "yes"
                rows.append(
                    _goal(
                        "live stream p95 latency, commit -> event",
                        f"{where} K={c['batch']}",
                        measured,
                        c["ratio_p50_to_post"],
                        met,
                    )
                )
    rows.append(
        {
            "goal": "live streams correct (no leak, no missed post, TAXII pulls agree)",
            "where": ", ".join(s["database"] for s in document["stores"]),
            "measured": "; ".join(document["failures"]) or "0 leaks, 0 missed",
            "ratio": None,
            "target": "yes",
            "met": not document["failures"],
        }
    )
    return rows


def _goal(goal: str, where: str, measured: str, ratio: float | None, met: bool | None) -> dict[str, Any]:
    return {"goal": goal, "where": where, "measured": measured, "ratio": ratio, "target": "p95 <= 1 s", "met": met}
