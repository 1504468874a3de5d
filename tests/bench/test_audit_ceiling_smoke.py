"""bench/audit_ceiling.py runs and writes well-formed results with a verified chain (no timing asserted)."""

from __future__ import annotations

import json

from bench import audit_ceiling


def test_audit_ceiling_runs_and_the_chain_verifies(tmp_path):
    out = tmp_path / "audit-ceiling.json"
    assert (
        audit_ceiling.main(
            ["--databases", "sqlite", "--threads", "4", "--seconds", "0.3", "--rounds", "1", "--out", str(out)]
        )
        == 0
    )
    run = json.loads(out.read_text())["runs"][0]
    assert run["database"] == "sqlite" and run["chain_verified"]
    assert run["one_transaction_each_records_per_s"] > 0 and run["group_commit_records_per_s"] > 0
    assert run["records_checked"] > 0
