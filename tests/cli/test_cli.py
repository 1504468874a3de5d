"""The ``tearline`` command, run in-process against SQLite files in a temporary directory.

These tests configure Tearline only through ``TEARLINE_*`` environment
variables, as an operator would, and do not use the shared database fixtures.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.auth.tokens import TokenVerifier
from app.cli import main as cli
from app.cli import server as cli_server
from app.config.settings import Settings
from app.demo import seed as demo
from app.taxii.models import DEFAULT_COLLECTION_ID

runner = CliRunner()


def run(*args: str, env: dict | None = None):
    return runner.invoke(cli.app, list(args), env=env)


def ok(*args: str, env: dict | None = None):
    result = run(*args, env=env)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def refused(*args: str, code: int = 2, env: dict | None = None):
    result = run(*args, env=env)
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    return result


def rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


@pytest.fixture
def migrated(env, tmp_path: Path) -> Path:
    ok("db", "upgrade")
    return tmp_path / "tearline.sqlite"


@pytest.fixture
def keys(env, tmp_path: Path) -> tuple[Path, Path]:
    ok("keys", "generate")
    return tmp_path / "data" / "keys" / "jwt-private.pem", tmp_path / "data" / "keys" / "jwt-public.pem"


def test_db_upgrade_creates_the_schema_with_the_default_collection(migrated: Path):
    tables = {name for (name,) in rows(migrated, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "label", "partner", "collection", "stix_object", "taxii_status"} <= tables
    assert rows(migrated, "SELECT id, read_roles, write_roles FROM collection") == [
        (DEFAULT_COLLECTION_ID, "partner,analyst", "analyst")
    ]
    ok("db", "upgrade")  # a second run is a no-op


def test_commands_needing_the_schema_say_how_to_create_it(env):
    result = refused("partner", "list", code=1)
    assert "tearline db upgrade" in result.stderr


def test_keys_generate_writes_a_pair_and_refuses_to_overwrite(env, tmp_path: Path):
    result = ok("keys", "generate")
    private, public = tmp_path / "data" / "keys" / "jwt-private.pem", tmp_path / "data" / "keys" / "jwt-public.pem"
    assert str(private) in result.stdout and str(public) in result.stdout
    assert "BEGIN PRIVATE KEY" in private.read_text() and "BEGIN PUBLIC KEY" in public.read_text()
    assert private.stat().st_mode & 0o777 == 0o600
    before = private.read_bytes()

    result = refused("keys", "generate")
    assert "--force" in result.stderr
    assert private.read_bytes() == before

    ok("keys", "generate", "--kind", "ec", "--force")
    assert private.read_bytes() != before


def test_partner_add_and_list(migrated: Path):
    ok("partner", "add", "usa", "--clearance", "SECRET", "--groups", "fvey,NATO", "--name", "United States")
    ok("partner", "add", "FRA", "--clearance", "NATO CONFIDENTIAL", "--groups", "NATO,EU", "--inactive")
    assert rows(migrated, "SELECT nation, name, clearance, groups, active FROM partner ORDER BY nation") == [
        ("FRA", "", 2, "EU,NATO", 0),
        ("USA", "United States", 3, "FVEY,NATO", 1),
    ]

    lines = ok("partner", "list").stdout.splitlines()
    assert lines[0].split() == ["NATION", "NAME", "CLEARANCE", "GROUPS", "ACTIVE"]
    assert lines[2].split() == ["FRA", "-", "CONFIDENTIAL", "EU,NATO", "no"]
    assert lines[3].split() == ["USA", "United", "States", "SECRET", "FVEY,NATO", "yes"]


def test_partner_add_registers_identities_and_keeps_them_on_update(migrated: Path):
    cert = "identity--0b9a2c4e-7d1f-4a55-9e6b-3c2d1f0e9a87"
    ok("partner", "add", "USA", "--clearance", "SECRET", "--identities", cert)
    ok("partner", "add", "USA", "--clearance", "CONFIDENTIAL")  # an update without --identities keeps them
    assert rows(migrated, "SELECT identities, clearance FROM partner WHERE nation = 'USA'") == [(cert, 2)]
    bad = refused("partner", "add", "USA", "--clearance", "SECRET", "--identities", "not-an-identity")
    assert "not a STIX identity id" in bad.stderr


def test_partner_add_refuses_unknown_clearance_and_stores_nothing(migrated: Path):
    result = refused("partner", "add", "DEU", "--clearance", "ULTRA")
    assert "unknown classification 'ULTRA'" in result.stderr
    assert rows(migrated, "SELECT * FROM partner") == []


@pytest.mark.parametrize("nation", ["NLD", "US", "U5A"])
def test_partner_add_refuses_the_home_nation_and_bad_codes(migrated: Path, nation: str):
    refused("partner", "add", nation, "--clearance", "SECRET")
    assert rows(migrated, "SELECT * FROM partner") == []


def test_collection_add_and_list(migrated: Path):
    collection_id = ok(
        "collection",
        "add",
        "--title",
        "Malware feed",
        "--alias",
        "malware",
        "--description",
        "Families and their indicators",
        "--read-roles",
        "partner,analyst,auditor",
        "--write-roles",
        "analyst",
    ).stdout.strip()
    assert rows(
        migrated,
        f"SELECT title, alias, description, read_roles, write_roles FROM collection WHERE id = '{collection_id}'",
    ) == [("Malware feed", "malware", "Families and their indicators", "analyst,auditor,partner", "analyst")]
    listing = ok("collection", "list").stdout
    assert collection_id in listing and DEFAULT_COLLECTION_ID in listing and "Malware feed" in listing

    refused("collection", "add", "--title", "Again", "--alias", "malware")


def test_collection_add_refuses_unknown_roles(migrated: Path):
    result = refused("collection", "add", "--title", "Bad", "--write-roles", "analyst,superuser")
    assert "superuser" in result.stderr
    assert rows(migrated, "SELECT count(*) FROM collection") == [(1,)]


def _verifier(public_key: Path) -> TokenVerifier:
    settings = Settings()
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        public_key=public_key.read_text(),
        asymmetric_algorithms=tuple(settings.jwt_algorithms),
    )


def test_token_issue_prints_only_a_token_the_server_verifies(keys, migrated):
    ok("partner", "add", "USA", "--clearance", "SECRET")  # a clearance is checked against the agreement
    result = ok(
        "token",
        "issue",
        "--subject",
        "usa-feed",
        "--nation",
        "usa",
        "--roles",
        "partner",
        "--clearance",
        "CONFIDENTIAL",
        "--lifetime",
        "120",
    )
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and " " not in token
    claims = _verifier(keys[1]).verify(token)
    assert (claims["sub"], claims["nation"], claims["roles"], claims["clearance"]) == (
        "usa-feed",
        "USA",
        ["partner"],
        "CONFIDENTIAL",
    )
    assert claims["exp"] - claims["iat"] == 120


def test_token_issue_signs_with_an_ec_key(env, tmp_path: Path):
    ok("keys", "generate", "--kind", "ec")
    token = ok("token", "issue", "--subject", "a1", "--nation", "NLD", "--roles", "analyst,auditor").stdout.strip()
    claims = _verifier(tmp_path / "data" / "keys" / "jwt-public.pem").verify(token)
    assert claims["roles"] == ["analyst", "auditor"] and "clearance" not in claims


def test_token_issue_without_a_key_says_how_to_get_one(env):
    result = refused("token", "issue", "--subject", "a", "--nation", "NLD", "--roles", "analyst", code=1)
    assert "tearline keys generate" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--nation", "NLD", "--roles", "partner"),  # the home nation has no partner role
        ("--nation", "USA", "--roles", "analyst"),  # partners hold only the partner role
        ("--nation", "USA", "--roles", "partner,spy"),  # unknown role
        ("--nation", "USA", "--roles", "partner", "--clearance", "ULTRA"),
        ("--nation", "US", "--roles", "partner"),
    ],
)
def test_token_issue_refuses_tokens_the_server_would_refuse(keys, args):
    result = refused("token", "issue", "--subject", "s", *args)
    assert result.stdout == ""


def test_token_issue_refuses_a_clearance_above_the_partner_agreement(keys, migrated):
    ok("partner", "add", "FRA", "--clearance", "CONFIDENTIAL")
    above = refused(
        "token", "issue", "--subject", "s", "--nation", "FRA", "--roles", "partner", "--clearance", "SECRET"
    )
    assert "agreement" in above.stderr and above.stdout == ""
    unknown = refused("token", "issue", "--subject", "s", "--nation", "DEU", "--roles", "partner", "--clearance", "U")
    assert "not an active partner" in unknown.stderr
    ok("token", "issue", "--subject", "s", "--nation", "FRA", "--roles", "partner", "--clearance", "RESTRICTED")


def test_serve_refuses_production_without_secrets(env, monkeypatch):
    monkeypatch.setattr(cli_server, "run_server", lambda *a, **k: pytest.fail("the server must not start"))
    result = refused("serve", code=1, env={"TEARLINE_ENV": "production"})
    assert "TEARLINE_SECRET_KEY is required in production" in result.stderr
    assert "TEARLINE_JWT_PUBLIC_KEY_FILE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_an_invalid_setting(env, monkeypatch):
    monkeypatch.setattr(cli_server, "run_server", lambda *a, **k: pytest.fail("the server must not start"))
    result = refused("serve", code=1, env={"TEARLINE_HOME_NATION": "Holland"})
    assert "TEARLINE_HOME_NATION" in result.stderr


def test_serve_refuses_a_database_without_schema(keys, monkeypatch):
    monkeypatch.setattr(cli_server, "run_server", lambda *a, **k: pytest.fail("the server must not start"))
    assert "tearline db upgrade" in refused("serve", code=1).stderr


def test_serve_runs_the_configured_app(migrated, keys, monkeypatch):
    started = {}
    monkeypatch.setattr(
        cli_server,
        "run_server",
        lambda app, host, port, key, cert: started.update(app=app, host=host, port=port, key=key, cert=cert),
    )
    ok("serve", "--port", "9123", env={"TEARLINE_HOST": "0.0.0.0"})
    assert (started["host"], started["port"], started["key"]) == ("0.0.0.0", 9123, None)
    assert started["app"].state.settings.database_url == os.environ["TEARLINE_DATABASE_URL"]


def test_demo_seeds_an_instance_idempotently(env, tmp_path: Path):
    result = ok("demo", "--no-serve", "--port", "8765")
    database = tmp_path / "data" / "demo" / "tearline.sqlite"
    count = f"SELECT count(*) FROM stix_object WHERE collection_id = '{DEFAULT_COLLECTION_ID}'"
    stored = rows(database, count)[0][0]
    assert 10 <= stored <= 25
    assert {t for (t,) in rows(database, "SELECT DISTINCT type FROM stix_object")} >= {
        "identity",
        "indicator",
        "malware",
        "threat-actor",
        "relationship",
        "report",
    }
    assert rows(database, "SELECT nation, clearance, groups FROM partner ORDER BY nation") == [
        ("CAN", 3, "FVEY,NATO"),
        ("DEU", 2, "EU,NATO"),
        ("FRA", 2, "EU,NATO"),
        ("GBR", 3, "FVEY,NATO"),
        ("USA", 3, "FVEY,NATO"),
    ]
    assert "http://127.0.0.1:8765/taxii2/" in result.stdout
    assert "as_pages" in result.stdout and "curl -sS -X POST" in result.stdout

    ok("demo", "--no-serve")
    assert rows(database, count)[0][0] == stored


def test_demo_tokens_are_accepted_by_the_demo_server(env, tmp_path: Path):
    from fastapi.testclient import TestClient

    from app.main import create_app

    output = ok("demo", "--no-serve").stdout
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", output, re.MULTILINE))
    assert "# partner USA (United States; cleared SECRET; FVEY, NATO)" in output
    partner_token, analyst_token = exports["PARTNER_TOKEN"], exports["ANALYST_TOKEN"]
    settings = demo.demo_settings(tmp_path / "data" / "demo")
    taxii = "application/taxii+json;version=2.1"
    with TestClient(create_app(settings)) as client:
        url = f"/taxii2/{settings.api_root}/collections/{DEFAULT_COLLECTION_ID}/objects/"
        pulled = client.get(url, headers={"Authorization": f"Bearer {partner_token}", "Accept": taxii})
        assert pulled.status_code == 200, pulled.text
        assert len(pulled.json()["objects"]) == len(demo.sample_objects("NLD"))
        posted = client.post(
            url,
            content=b'{"objects": []}',
            headers={"Authorization": f"Bearer {analyst_token}", "Accept": taxii, "Content-Type": taxii},
        )
        assert posted.status_code == 202, posted.text


def test_demo_skips_a_home_nation_among_its_partners(env, tmp_path: Path):
    result = ok("demo", "--no-serve", env={"TEARLINE_HOME_NATION": "USA"})
    database = tmp_path / "data" / "demo" / "tearline.sqlite"
    assert [n for (n,) in rows(database, "SELECT nation FROM partner ORDER BY nation")] == ["CAN", "DEU", "FRA", "GBR"]
    assert "# partner GBR (United Kingdom" in result.stdout and "# partner USA" not in result.stdout


def test_sample_objects_are_valid_stix_and_stable():
    from stix2validator import ValidationOptions, validate_instance

    objects = demo.sample_objects("NLD")
    assert objects == demo.sample_objects("NLD")
    assert 10 <= len(objects) <= 25
    for obj in objects:
        result = validate_instance(obj, ValidationOptions(version="2.1"))
        assert result.is_valid and not result.warnings, obj["id"]


def test_demo_items_have_the_author_the_analyst_api_gives():
    from app.items.identity import home_identity, home_identity_id

    objects = {obj["id"]: obj for obj in demo.sample_objects("NLD")}
    authors = {obj.get("created_by_ref") for obj in objects.values()} - {None}
    assert authors == {home_identity_id("NLD")}
    assert objects[home_identity_id("NLD")] == home_identity("NLD")


def test_label_check_prints_the_canonical_banner_id_and_partners(env):
    ok("db", "upgrade")
    ok("partner", "add", "USA", "--clearance", "SECRET", "--groups", "FVEY,NATO")
    ok("partner", "add", "FRA", "--clearance", "CONFIDENTIEL DEFENSE", "--groups", "NATO,EU")
    result = ok("label", "check", "secret // rel to fvey")
    lines = dict(line.split(":", 1) for line in result.output.strip().splitlines())
    assert lines["banner"].strip() == "SECRET//REL TO NLD, FVEY"
    assert lines["marking-definition"].strip().startswith("marking-definition--")
    assert lines["partners who see it"].strip() == "USA"
    again = ok("label", "check", "S//REL TO FVEY")
    assert again.output == result.output  # deterministic id for the same canonical banner
    assert "XYZ" in refused("label", "check", "SECRET//REL TO XYZ").output


def test_policy_check_explains_the_decision(env):
    ok("db", "upgrade")
    ok("partner", "add", "FRA", "--clearance", "CONFIDENTIAL", "--groups", "NATO,EU")
    allowed = ok("policy", "check", "--nation", "FRA", "--banner", "CONFIDENTIAL//REL TO NATO").output
    assert allowed.startswith("decision: ALLOW")
    denied = ok("policy", "check", "--nation", "FRA", "--banner", "SECRET//REL TO NATO").output
    assert denied.startswith("decision: DENY") and "FAIL a. classification within clearance" in denied
    unknown = ok("policy", "check", "--nation", "BRA", "--banner", "UNCLASSIFIED//REL TO ALL").output
    assert unknown.startswith("decision: DENY")


def test_group_set_changes_membership_for_decisions(env):
    ok("db", "upgrade")
    ok("partner", "add", "DEU", "--clearance", "SECRET", "--groups", "NATO,EU")
    assert ok("policy", "check", "--nation", "DEU", "--banner", "SECRET//REL TO FVEY").output.startswith(
        "decision: DENY"
    )
    ok("group", "set", "FVEY", "--members", "USA,GBR,CAN,AUS,NZL,DEU")
    assert ok("policy", "check", "--nation", "DEU", "--banner", "SECRET//REL TO FVEY").output.startswith(
        "decision: ALLOW"
    )
    assert "DEU" in next(line for line in ok("group", "list").output.splitlines() if line.startswith("FVEY:"))
    assert "XYZ" in refused("group", "set", "FVEY", "--members", "USA,XYZ").output
