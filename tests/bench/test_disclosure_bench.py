"""Smoke test of the disclosure-review benchmark: a 200-item queue on SQLite, one repeat.

No timing is asserted (speed lives in bench/); only that the script runs, releases what it should
and writes every measure.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.config.settings import REPO_ROOT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MEASURES = {
    "queue_first_page_100",
    "queue_first_page_1000",
    "review_preview",
    "union_preview",
    "batch_release",
    "pull_after_release",
    "stream_after_release",
}


def test_disclosure_smoke_run_writes_every_measure(tmp_path):
    out = tmp_path / "disclosure.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "disclosure.py"),
            "--databases",
            "sqlite",
            "--items",
            "200",
            "--repeats",
            "1",
            "--no-profile",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| sqlite |" in done.stdout
    result = json.loads(out.read_text())
    assert (result["items"], result["batch"], result["repeats"]) == (200, 200, 1)
    (store,) = result["stores"]
    assert store["database"] == "sqlite"
    assert store["seed"]["pending"] == 200
    measures = store["measures"]
    assert set(measures) == MEASURES
    for name, figures in measures.items():
        assert len(figures["ms"]) == 1, name
        assert figures["median_ms"] > 0 and figures["max_ms"] >= figures["median_ms"], name
        assert figures["verdict"] in ("yes", "median only", "no"), name
    assert measures["queue_first_page_100"]["reviews"] == 100
    assert measures["queue_first_page_1000"]["reviews"] == 200  # the whole queue
    # Every partner is previewed; USA may see every item, so it would receive the whole batch.
    union = measures["union_preview"]
    assert union["partners"] == 10 and union["would_receive_per_partner"]["USA"] == 200
    assert measures["stream_after_release"]["events"][0] >= 1
