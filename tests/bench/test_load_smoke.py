"""Smoke test of the load and audit ceiling benchmark (issue 22): 2 s a phase on SQLite, one instance.

No timing is asserted (speed lives in bench/); only that the run is correct and its results well
formed: no error or leak under the load, a page served, and exactly one audit record for every
request the ceiling's clients got a 200 for, with the chain verifying afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.config.settings import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_load_smoke_run_is_correct_and_well_formed(tmp_path):
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "load.py"),
            "--databases",
            "sqlite",
            "--seconds",
            "2",
            "--preload",
            "100",
            "--ceiling-clients",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert (run["database"], run["instances"], run["preload"]) == ("sqlite", 1, 100)
    load = run["load"]
    assert load["errors"] == 0 and load["leaks"] == 0, load["error_samples"] + load["leak_samples"]
    assert load["pages"] > 0 and load["objects_received"] > 0 and load["posted"] > 0
    assert load["p95_ms"] >= load["p50_ms"] > 0
    ceiling = run["ceiling"]
    assert ceiling["clients"] == 4 and ceiling["answered_200"] > 0
    assert ceiling["failures"] == 0, ceiling["failure_samples"]
    assert ceiling["records"]["by_status"] == {"200": ceiling["answered_200"]}  # one record per answer
    assert ceiling["records_match"] and ceiling["records_missing"] == 0
    assert run["chain"]["ok"], run["chain"]
    assert not run["servers_killed"]
    assert result["verdicts"]["correct"] is True
    assert [c["database"] for c in result["verdicts"]["ceiling"]] == ["sqlite"]
    report = out.with_suffix(".md").read_text()
    assert "| sqlite | 1 |" in report and "audit ceiling, sqlite x1" in report
