"""A newcomer's first hour, end to end, on a fresh data folder (issue 24, "Done when").

`tearline demo --no-serve` in an empty working directory, `tearline serve` there; every token the
demo printed is used for its role against the live server; the `tearline` command is run from that
directory with no TEARLINE_* variable exported; then every example of README.md and docs/ runs as
pasted against the same server (the last tests here, since examples change the demo's data).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from jose import jwt
from taxii2client.common import TokenAuth
from taxii2client.v21 import Collection, as_pages

from app.demo.seed import sample_objects
from app.taxii.models import DEFAULT_COLLECTION_ID
from tests.demo.conftest import DemoSite, cli, newcomer_environment
from tests.demo.snippets import PAGES, Block, PageRun, all_blocks, page_name, run_page, stray_markers

pytestmark = pytest.mark.e2e

ROLES = {
    "PARTNER_TOKEN": ("USA", ["partner"]),
    "SECOND_PARTNER_TOKEN": ("FRA", ["partner"]),
    "ANALYST_TOKEN": ("NLD", ["analyst"]),
    "AUDITOR_TOKEN": ("NLD", ["auditor"]),
    "ADMIN_TOKEN": ("NLD", ["admin"]),
    "OFFICER_TOKEN": ("NLD", ["officer"]),
    "SECOND_OFFICER_TOKEN": ("NLD", ["officer"]),
}
# Pages whose examples another change is rewriting; their blocks are reported as skipped, by name.
HELD_PAGES: dict[str, str] = {}  # pages whose blocks are held back for a reason, page -> reason


def _bearer(site: DemoSite, variable: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.token(variable)}"}


def _pull_ids(site: DemoSite, variable: str) -> set[str]:
    collection = Collection(
        f"{site.base_url}/taxii2/api1/collections/{DEFAULT_COLLECTION_ID}/", auth=TokenAuth(site.token(variable))
    )
    return {obj["id"] for page in as_pages(collection.get_objects, per_request=7) for obj in page.get("objects", [])}


def test_demo_prints_a_token_per_role_the_console_and_the_way_back(demo_site: DemoSite):
    assert demo_site.exports["TEARLINE"] == demo_site.base_url
    for variable, (nation, roles) in ROLES.items():
        claims = jwt.get_unverified_claims(demo_site.token(variable))
        assert (claims["nation"], claims["roles"]) == (nation, roles), variable
    assert f"Auditor console: {demo_site.base_url}/console/" in demo_site.printed
    demo_dir = demo_site.work / "data" / "demo"
    assert f"--data-dir {demo_dir} COMMAND" in demo_site.printed
    pointer = (demo_site.work / "data" / "tearline.env").read_text()
    assert f"TEARLINE_DATA_DIR='{demo_dir}'" in pointer and "TEARLINE_ENV='development'" in pointer
    # The snippets printed before this change still come out whole.
    assert "as_pages(collection.get_objects" in demo_site.printed and "curl -sS -X POST" in demo_site.printed


def test_partner_tokens_pull_over_taxii_and_see_different_things(demo_site: DemoSite):
    usa, fra = _pull_ids(demo_site, "PARTNER_TOKEN"), _pull_ids(demo_site, "SECOND_PARTNER_TOKEN")
    everything = {obj["id"] for obj in sample_objects("NLD")}
    assert fra and fra < usa <= everything
    actor = next(obj["id"] for obj in sample_objects("NLD") if obj["type"] == "threat-actor")
    assert actor in usa and actor not in fra  # SECRET//REL TO NLD, FVEY


def test_analyst_token_posts_an_item(demo_site: DemoSite):
    posted = requests.post(
        f"{demo_site.base_url}/api/v1/items",
        json={
            "type": "indicator",
            "name": "First hour",
            "pattern": "[ipv4-addr:value = '192.0.2.7']",
            "banner": "SECRET//REL TO USA",
        },
        headers=_bearer(demo_site, "ANALYST_TOKEN"),
        timeout=30,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["stored"][-1]["banner"] == "SECRET//REL TO NLD, USA"


def test_auditor_token_reads_the_audit_records_newest_first(demo_site: DemoSite):
    url = f"{demo_site.base_url}/api/v1/audit/records"
    answer = requests.get(
        url, params={"order": "desc", "limit": 1000}, headers=_bearer(demo_site, "AUDITOR_TOKEN"), timeout=30
    )
    assert answer.status_code == 200, answer.text
    records = answer.json()["records"]
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) > 1
    assert {"usa-demo-feed", "fra-demo-feed"} <= {r["subject"] for r in records}
    refused = requests.get(url, headers=_bearer(demo_site, "PARTNER_TOKEN"), timeout=30)
    assert refused.status_code == 403


def test_admin_token_lists_collections(demo_site: DemoSite):
    url = f"{demo_site.base_url}/api/v1/collections"
    answer = requests.get(url, headers=_bearer(demo_site, "ADMIN_TOKEN"), timeout=30)
    assert answer.status_code == 200, answer.text
    assert DEFAULT_COLLECTION_ID in answer.text
    assert requests.get(url, headers=_bearer(demo_site, "ANALYST_TOKEN"), timeout=30).status_code == 403


def test_cli_finds_the_demo_from_its_directory_with_no_variables(demo_site: DemoSite, tmp_path: Path):
    issued = cli(
        "token", "issue", "--subject", "audit-office", "--nation", "NLD", "--roles", "auditor", cwd=demo_site.work
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    answer = requests.get(
        f"{demo_site.base_url}/api/v1/audit/records", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200  # signed with the demo's key, so the demo server accepts it

    label = cli("label", "check", "SECRET//REL TO FVEY", cwd=demo_site.work)
    assert label.returncode == 0, label.stderr
    assert "partners who see it: CAN, GBR, USA" in label.stdout  # the demo's partners
    policy = cli("policy", "check", "--nation", "FRA", "--banner", "SECRET//REL TO NATO", cwd=demo_site.work)
    assert policy.returncode == 0 and policy.stdout.startswith("decision: DENY"), policy.stderr
    verified = cli("audit", "verify", cwd=demo_site.work)
    assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stderr

    # Elsewhere nothing is found, nothing is created, and --data-dir points the command at the demo.
    missing = cli("label", "check", "SECRET//REL TO FVEY", cwd=tmp_path)
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert list(tmp_path.iterdir()) == []
    pointed = cli("--data-dir", str(demo_site.work / "data" / "demo"), "audit", "verify", cwd=tmp_path)
    assert pointed.returncode == 0 and pointed.stdout.startswith("ok: "), pointed.stderr
    assert list(tmp_path.iterdir()) == []


# ---- the documentation's examples ---------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_not_run_markers_stand_before_a_runnable_block(page: Path):
    assert stray_markers(page) == [], f"{page_name(page)}: a `not run` marker excuses no sh/python block"


@pytest.fixture(scope="module")
def page_runs(demo_site: DemoSite, tmp_path_factory) -> Callable[[str], PageRun]:
    """Run each page's examples once, on first demand, in a working directory of its own."""
    runs: dict[str, PageRun] = {}
    env = newcomer_environment(**demo_site.exports)
    pages = tmp_path_factory.mktemp("pages")

    def run(page: str) -> PageRun:
        if page not in runs:
            cwd = pages / page.replace("/", "_")
            # The demo's settings file, so `tearline` finds the demo from here as from its own directory.
            (cwd / "data").mkdir(parents=True)
            shutil.copy(demo_site.work / "data" / "tearline.env", cwd / "data" / "tearline.env")
            blocks = [b for b in all_blocks() if b.page == page]
            runs[page] = run_page(blocks, cwd=cwd, env=env, base_url=demo_site.base_url)
        return runs[page]

    return run


@pytest.mark.parametrize("block", all_blocks(), ids=lambda b: f"{b.label}-{b.language}")
def test_documented_example_runs_as_pasted(block: Block, page_runs: Callable[[str], PageRun]):
    if block.skip:
        pytest.skip(f"not run: {block.skip}")
    if block.page in HELD_PAGES:
        pytest.skip(HELD_PAGES[block.page])
    run = page_runs(block.page)
    assert block.label in run.done, run.explain(block)
