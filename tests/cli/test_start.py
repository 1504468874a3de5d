"""Loading the ``tearline`` command imports no heavy package, so ``tearline --help`` starts quickly.

The start-up time itself is measured by ``bench/cli_start.py`` (goal: at most 15 times
``python -c pass``); timing is not asserted here. What is asserted is its cause, which does not
depend on the machine: the command modules import SQLAlchemy, the app's domain modules, STIX and
JSON Schema validation, FastAPI, HTTP clients and cryptography inside the commands that need them,
never at module level. Each probe runs in a fresh interpreter, since this process has long since
imported all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import audit as cli_audit
from app.cli import config as cli_config
from app.cli import recall as cli_recall
from app.cli.common import DEFAULT_COLLECTION_ID

# Top-level packages no command needs just to be loaded or to print its help.
HEAVY = frozenset(
    {
        "alembic",
        "casbin",
        "cryptography",
        "fastapi",
        "httpx",
        "httpx_sse",
        "jose",
        "jsonschema",
        "psycopg",
        "pydantic_settings",
        "sqlalchemy",
        "sqlmodel",
        "starlette",
        "stix2",
        "stix2validator",
        "tenacity",
        "uvicorn",
    }
)

# The app modules loading the CLI may import: its own and two that import only the standard
# library (the roles; the unknown-token error). Another one belongs inside the command
# that needs it, or here if it is as light.
LIGHT_APP = frozenset({"app", "app.auth", "app.auth.principal", "app.markings", "app.markings.tokens"})

PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
import app.cli.main
if argv:
    sys.argv = ["tearline", *argv]
    try:
        app.cli.main.main()
    except SystemExit:
        pass
print("\\n" + json.dumps(sorted(sys.modules)))
"""


def _loaded(argv: list[str]) -> set[str]:
    """Every module a fresh interpreter has imported after loading the CLI (and running ``argv``)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"},  # no TEARLINE_* setting: help reads none
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.rstrip().rsplit("\n", 1)[-1]))


@pytest.mark.parametrize(
    "argv",
    [[], ["--help"], ["token", "--help"], ["audit", "export", "--help"], ["feed", "add", "--help"]],
    ids=["import", "help", "token-help", "audit-export-help", "feed-add-help"],
)
def test_loading_the_cli_imports_no_heavy_package(argv: list[str]) -> None:
    loaded = _loaded(argv)
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert not heavy, f"`tearline {' '.join(argv)}` imported {heavy}: import them inside the commands that use them"
    app_modules = {name for name in loaded if name == "app" or name.startswith("app.")}
    unexpected = sorted(name for name in app_modules - LIGHT_APP if not name.startswith("app.cli"))
    assert not unexpected, f"`tearline {' '.join(argv)}` imported {unexpected}: import them inside the commands"


def test_the_constants_copied_for_help_texts_match_their_originals() -> None:
    # Copied so that --help need not import their modules; a change to the original must reach the copy.
    from app.audit.query import MAX_SEQ
    from app.config.reference import DEFAULT_OUTPUT
    from app.recall.report_routes import MAX_PAGE
    from app.taxii.models import DEFAULT_COLLECTION_ID as STORED_DEFAULT

    assert DEFAULT_COLLECTION_ID == STORED_DEFAULT
    assert cli_config.DEFAULT_OUTPUT == DEFAULT_OUTPUT
    assert cli_audit.MAX_SEQ == MAX_SEQ
    assert cli_recall.PAGE == MAX_PAGE


def test_the_start_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    # One round only, and no figure checked against the goal: the speed itself lives in bench/.
    out = tmp_path / "cli-start.json"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "cli_start.py"), "--runs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "goal MET" in done.stdout or "goal MISSED" in done.stdout
    result = json.loads(out.read_text())
    assert set(result["commands"]) == {"python -c pass", "tearline --help", "tearline token --help"}
    assert result["commands"]["python -c pass"]["ratio"] == 1.0
    assert all(len(samples["wall"]) == 1 for samples in result["samples_ms"].values())
    assert result["goal_met"] == (result["worst_ratio"] <= result["goal_ratio"])


def test_a_server_process_freezes_its_startup_heap_and_collects_young_objects_less_often() -> None:
    """``prepare_process`` (run by ``tearline serve`` before serving): the validator is loaded, the
    heap so far is frozen out of the collector's sight, and the youngest generation is collected
    after 10,000 net allocations (a page's containers are not walked again and again)."""
    probe = (
        "import gc, json, sys; from app.cli.server import prepare_process, YOUNG_COLLECTION_THRESHOLD; "
        "before = gc.get_threshold(); prepare_process(); prepare_process(); "
        "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count(), YOUNG_COLLECTION_THRESHOLD, "
        "'app.items.stix_validation' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    before, after, frozen, threshold, validator_loaded = json.loads(out)
    assert before[0] == 700  # CPython's default, which the server raises
    assert after == [threshold, before[1], before[2]]
    assert threshold == 10_000
    assert frozen > 100_000  # the imported libraries
    assert validator_loaded
