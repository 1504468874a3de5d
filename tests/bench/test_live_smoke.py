"""Smoke test of the live-stream latency benchmark (issue 22): two streams on SQLite, two repeats of one object.

No timing is asserted (speed lives in bench/); only that the run is correct and its results well
formed: the stream that may see the posts got every one, the stream that may not got nothing, and
each nation's TAXII pull agrees.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.config.settings import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_live_smoke_run_delivers_to_allowed_streams_only(tmp_path):
    out = tmp_path / "live.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "live.py"),
            "--databases",
            "sqlite",
            "--streams",
            "2",
            "--batch",
            "1",
            "--repeats",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| sqlite | 2 |" in done.stdout
    result = json.loads(out.read_text())
    assert (result["streams"], result["batch"], result["repeats"], result["failures"]) == ([2], [1], {"1": 2}, [])
    assert result["may_see"]["USA"] and not result["may_see"]["AUS"]
    (store,) = result["stores"]
    assert store["database"] == "sqlite"
    (block,) = store["blocks"]
    # S = 2: USA (may see the posts) and AUS (not released to).
    assert (block["streams"], block["allowed_streams"], block["opened"]) == (2, 1, 2)
    assert block["nations"] == {"USA": 1, "AUS": 1}
    assert block["refused"] == [] and block["leaks"] == [] and block["anomalies"] == []
    assert block["received_by_denied_streams"] == 0
    (config,) = block["configs"]
    assert (config["batch"], config["repeats"], config["missed_deliveries"]) == (1, 2, 0)
    assert [r["number"] for r in config["per_repeat"]] == [0, 1, 2]  # the cold repeat, then the timed ones
    for repeat in config["per_repeat"]:
        assert set(repeat["arrivals_from_commit_ms"]) == {"0"}, repeat  # stream 0 (USA) got it, stream 1 not
        assert repeat["missed"] == {}
        assert repeat["post_ms"] > 0 and repeat["commit_after_sent_ms"] <= repeat["post_ms"]
    assert config["events_per_delivery"] == {"1": 2}
    for origin in ("from_commit", "from_response", "from_sent"):
        figures = config["latency_ms"][origin]
        assert figures["p50"] <= figures["p95"] <= figures["max"], (origin, figures)
        assert 0 <= figures["under_1s"] <= 1
    # Each delivery is timed from three moments in order: sent <= committed <= answered.
    latency = config["latency_ms"]
    assert latency["from_sent"]["max"] >= latency["from_commit"]["max"] >= latency["from_response"]["max"]
    assert config["verdict"] in ("yes", "no")
    assert config["ratio_p50_to_post"] is not None and config["post_ms"]["p50"] > 0
    pulls = store["pull_check"]
    assert pulls["ok"] and pulls["posted"] == 3  # one cold and two timed posts of one object
    assert {n for n, v in pulls["nations"].items() if v["pulled"]} == {"USA", "GBR", "CAN", "FRA", "DEU"}
    # The rows bench/goals.py puts in the report: the latency of (sqlite, S=2, K=1), then correctness.
    latency_row, correct_row = result["goals"]
    assert latency_row["where"] == "sqlite S=2 K=1" and latency_row["met"] is (config["verdict"] == "yes")
    assert correct_row["met"] is True
    markdown = out.with_suffix(".md").read_text()
    assert "verdict (p95 <= 1 s)" in markdown and "FAILURES" not in markdown
