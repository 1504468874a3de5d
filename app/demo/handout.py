"""What ``tearline demo`` hands a newcomer: a token per role, the way back to the instance, examples.

Seeding is :mod:`app.demo.seed`; this module signs the tokens, writes the settings file through
which the ``tearline`` command finds the demo instance (:mod:`app.config.instance`), and
composes the text the demo prints.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stix2

from app.auth.signing import sign_token
from app.config.instance import DEFAULT_DATA_DIR, SETTINGS_FILE, sqlite_url, write_settings_file
from app.config.settings import Settings
from app.demo.seed import ANALYST_SUBJECT, DEMO_DIR, DEMO_PARTNERS, DEMO_TOKEN_LIFETIME_S
from app.items.identity import home_identity_id
from app.taxii.models import DEFAULT_COLLECTION_ID

# The first line of a settings file the demo wrote: only such a file is ever replaced.
WRITTEN_BY = "Written by `tearline demo`"


@dataclass(frozen=True)
class RoleToken:
    """One printed token: the shell variable the docs use for it, whose it is, and what it may do."""

    variable: str
    nation: str
    role: str
    subject: str
    what: str
    token: str


def token_partners(settings: Settings) -> tuple[str, str]:
    """Two demo partners that see different things: the first in FVEY, and the first outside it."""
    partners = [(nation, groups) for nation, _, _, groups in DEMO_PARTNERS if nation != settings.home_nation]
    inside = next(nation for nation, groups in partners if "FVEY" in groups)
    outside = next(nation for nation, groups in partners if "FVEY" not in groups)
    return inside, outside


def _partner_description(nation: str) -> str:
    _, name, clearance, groups = next(p for p in DEMO_PARTNERS if p[0] == nation)
    return f"partner {nation} ({name}; cleared {clearance}; {', '.join(groups)})"


def issue_tokens(settings: Settings) -> list[RoleToken]:
    """A token for each role, signed with the demo instance's key: two partners, analyst, auditor, admin."""
    inside, outside = token_partners(settings)
    home = settings.home_nation
    wanted = [
        ("PARTNER_TOKEN", inside, "partner", f"{inside.lower()}-demo-feed", "sees the items released to FVEY"),
        (
            "SECOND_PARTNER_TOKEN",
            outside,
            "partner",
            f"{outside.lower()}-demo-feed",
            f"sees less than {inside}: no SECRET item, nothing released to FVEY only",
        ),
        ("ANALYST_TOKEN", home, "analyst", ANALYST_SUBJECT, "posts and manages items (TAXII, /api/v1/items)"),
        ("AUDITOR_TOKEN", home, "auditor", "demo-auditor", "reads the audit log (/api/v1/audit, the console)"),
        ("ADMIN_TOKEN", home, "admin", "demo-admin", "manages collections and feeds (/api/v1/collections)"),
        ("OFFICER_TOKEN", home, "officer", "demo-officer", "releases held items (/api/v1/disclosure)"),
        ("SECOND_OFFICER_TOKEN", home, "officer", "demo-officer-2", "a second officer, for SECRET releases"),
    ]
    return [
        RoleToken(
            variable,
            nation,
            role,
            subject,
            what,
            sign_token(settings, subject=subject, nation=nation, roles=[role], lifetime_s=DEMO_TOKEN_LIFETIME_S),
        )
        for variable, nation, role, subject, what in wanted
    ]


def _holds_instance(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds an instance of its own: keys, or a SQLite database with tables."""
    if (data_dir / "keys").exists():
        return True
    database = data_dir / "tearline.sqlite"
    if not database.exists():
        return False
    # An empty file (what a command run before this fix could leave behind) is no instance.
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return bool(connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except sqlite3.Error:
        return True


def write_pointer(settings: Settings, cwd: Path) -> str | None:
    """Write ``./data/tearline.env`` naming the demo instance, so the command finds it from ``cwd``.

    Returns why it was not written, or None. Only for the demo in its default place, and never over
    a file the demo did not write or in place of an instance that lives in ``./data`` itself.
    """
    if settings.data_dir != (cwd / DEMO_DIR).resolve():
        return "the demo is not in ./data/demo"
    data_dir = cwd / DEFAULT_DATA_DIR
    pointer = data_dir / SETTINGS_FILE
    if pointer.exists() and not pointer.read_text().startswith(f"# {WRITTEN_BY}"):
        return f"{pointer} exists and was not written by the demo"
    if _holds_instance(data_dir):
        return f"{data_dir} holds an instance of its own"
    header = (
        f"{WRITTEN_BY} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: the `tearline` command run from\n"
        f"{cwd} acts on the demo instance in {settings.data_dir}.\n"
        "TEARLINE_* environment variables override these lines; with TEARLINE_ENV=production this\n"
        "file is ignored. Delete it to use ./data itself again."
    )
    write_settings_file(
        pointer,
        header,
        {
            "env": "development",
            "data_dir": str(settings.data_dir),
            "database_url": sqlite_url(settings.data_dir / "tearline.sqlite"),
        },
    )
    return None


def command_path(cwd: Path) -> tuple[str, str]:
    """How to call this ``tearline``: as typed from ``cwd`` (e.g. ``.venv/bin/tearline``), and absolute."""
    script = Path(sys.argv[0])
    if script.name != "tearline":
        return "tearline", "tearline"
    # abspath, not resolve(): a venv's bin/ may be a symbolic link, and the path typed is the one to show.
    absolute = Path(os.path.abspath(script))
    local = str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else str(absolute)
    return local, str(absolute)


def public_url(settings: Settings) -> str:
    """Base URL a local client uses; a wildcard listen address is reached through loopback."""
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _sample_post(settings: Settings) -> dict[str, Any]:
    indicator = stix2.v21.Indicator(
        name="Phishing sender observed by the demo analyst",
        description="Sender address of invoice-themed spearphishing emails.",
        pattern="[email-addr:value = 'procurement-office@lantern-mirror.example']",
        pattern_type="stix",
        valid_from=datetime.now(UTC),
        indicator_types=["malicious-activity"],
        created_by_ref=home_identity_id(settings.home_nation),
    )
    return {"objects": [json.loads(indicator.serialize())]}


def _command_line_text(settings: Settings, cwd: Path, not_written: str | None) -> str:
    local, absolute = command_path(cwd)
    anywhere = f"  {absolute} --data-dir {settings.data_dir} COMMAND\n"
    if not_written is not None:
        return f"Command line: {not_written}, so ./data/{SETTINGS_FILE} was left alone; point it at this instance:\n{anywhere}"
    activate = "; after `. .venv/bin/activate`, plain `tearline COMMAND` does the same" if local != absolute else ""
    return (
        f"Command line: from {cwd}, `{local} COMMAND` acts on this instance\n"
        f"(./data/{SETTINGS_FILE} names it), e.g. `{local} audit verify`{activate}.\n"
        f"From any other directory:\n{anywhere}"
    )


def instructions(settings: Settings, tokens: list[RoleToken], *, cwd: Path, not_written: str | None) -> str:
    """What the demo prints: URLs, a token per role as shell lines, the command line, a pull and a post."""
    base = public_url(settings)
    collection_url = f"{base}/taxii2/{settings.api_root}/collections/{DEFAULT_COLLECTION_ID}/"
    envelope = json.dumps(_sample_post(settings), indent=2)
    hours = DEMO_TOKEN_LIFETIME_S // 3600
    partner = tokens[0]
    analyst = next(t for t in tokens if t.role == "analyst")
    exports = "\n".join(
        f"# {_partner_description(t.nation) if t.role == 'partner' else f'{t.role} ({t.nation})'}: {t.what}\n"
        f"export {t.variable}={t.token}"
        for t in tokens
    )
    return f"""\
Tearline demo ({settings.home_nation} is the home nation)
  TAXII discovery: {base}/taxii2/
  Auditor console: {base}/console/   (log in with the auditor token)
  API docs:        {base}/docs
  Health:          {base}/healthz
  Data:            {settings.data_dir}

A token for each role, valid {hours} h. Paste these lines into your shell: the examples in
README.md and docs/ use these variables.

export TEARLINE={base}
{exports}

{_command_line_text(settings, cwd, not_written)}
Pull as {partner.nation} with taxii2-client (Python):

from taxii2client.common import TokenAuth
from taxii2client.v21 import Collection, Server, as_pages

auth = TokenAuth("{partner.token}")
server = Server("{base}/taxii2/", auth=auth)
print(server.title, [root.url for root in server.api_roots])
collection = Collection("{collection_url}", auth=auth)
for envelope in as_pages(collection.get_objects, per_request=5):
    for obj in envelope.get("objects", []):
        print(obj["type"], obj["id"], obj.get("name", ""))

Post an envelope as the analyst (shell):

curl -sS -X POST "{collection_url}objects/" \\
  -H "Authorization: Bearer {analyst.token}" \\
  -H "Accept: application/taxii+json;version=2.1" \\
  -H "Content-Type: application/taxii+json;version=2.1" \\
  --data-binary @- <<'EOF'
{envelope}
EOF

Read the newest audit records as the auditor, and list collections as the admin (after the export lines):

curl -sS "$TEARLINE/api/v1/audit/records?order=desc&limit=5" -H "Authorization: Bearer $AUDITOR_TOKEN"
curl -sS "$TEARLINE/api/v1/collections" -H "Authorization: Bearer $ADMIN_TOKEN"
"""
