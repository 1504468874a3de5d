"""The documentation stays true to the code: links resolve, every `tearline` command it shows
exists with the options it uses, every TEARLINE_* variable it names is a setting (or the
entry point's one variable), and every /api/v1 route it names is served."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from app.cli.main import app as cli_app
from app.config.settings import REPO_ROOT, Settings

DOCS = sorted((REPO_ROOT / "docs").rglob("*.md"))
PAGES = [*DOCS, REPO_ROOT / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Variables that are not settings: the image entry point's, and the partner-side examples'.
NOT_SETTINGS = {
    "TEARLINE_SECRETS_DIR",
    "TEARLINE_PARTNER_TOKEN",
    # compose.yaml's own variables (where the secrets are, the published port, the image)
    "TEARLINE_COMPOSE_SECRETS",
    "TEARLINE_COMPOSE_PORT",
    "TEARLINE_COMPOSE_IMAGE",
    # the test suite's own knobs, named in the README
    "TEARLINE_TEST_PG_ADMIN_URL",
    "TEARLINE_LEAK_EXAMPLES",
    "TEARLINE_LEAK_MIN_DECISIONS",
    "TEARLINE_LOAD_SECONDS",
}


def _anchors(page: Path) -> set[str]:
    """GitHub-style anchors of a page's headings."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_docs_exist_for_every_audience():
    names = {p.relative_to(REPO_ROOT / "docs").as_posix() for p in DOCS}
    assert {
        "README.md",
        "configuration.md",
        "partners.md",
        "analysts.md",
        "auditors.md",
        "operators/deployment.md",
        "operators/administration.md",
        "operators/observability.md",
    } <= names
    readme = (REPO_ROOT / "README.md").read_text()
    for page in (
        "docs/operators/deployment.md",
        "docs/partners.md",
        "docs/analysts.md",
        "docs/auditors.md",
        "docs/configuration.md",
    ):
        assert f"]({page})" in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_relative_links_resolve(page: Path):
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no heading for #{anchor} in {resolved.name}"


def _shell_blocks(text: str) -> list[str]:
    """The bodies of fenced code blocks marked sh or bash, or unmarked."""
    blocks: list[str] = []
    body: list[str] | None = None
    keep = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if body is None:
                body, keep = [], line.strip().strip("`") in ("", "sh", "bash")
            else:
                if keep:
                    blocks.append("\n".join(body))
                body = None
        elif body is not None:
            body.append(line)
    return blocks


# `tearline` as the command word: at the start of a command (after VAR=value assignments or a
# path such as .venv/bin/), inside $( ), or as the image/service of `docker [compose] run`.
_INVOCATION = re.compile(
    r"(?:^\s*|\$\(|&&\s*|;\s*)(?:[A-Z_]+=\S+\s+)*(?:\S*/)?tearline\s+([^;|&)#]*)"
    r"|\brun\s+--rm\s+(?:-\S+\s+\S+\s+)*tearline\s+([^;|&)#]*)"
)


def _command_lines(text: str) -> list[list[str]]:
    """Every `tearline ...` invocation in the shell blocks, continuation lines joined."""
    commands = []
    for block in _shell_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            for match in _INVOCATION.finditer(line):
                try:
                    words = shlex.split(match.group(1) or match.group(2) or "")
                except ValueError:
                    continue
                # The root command's own option comes before the command: `tearline --data-dir DIR partner list`.
                while words and words[0].startswith("--data-dir"):
                    words = words[1:] if "=" in words[0] else words[2:]
                if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
                    commands.append(words)
    return commands


def _resolve(words: list[str]):
    """The command ``words`` names and the words after it (typer may carry its own click: duck typing)."""
    command = typer.main.get_command(cli_app)
    rest = list(words)
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_tearline_command_shown_exists_with_its_options(page: Path):
    for words in _command_lines(page.read_text()):
        command, rest = _resolve(words)
        assert not hasattr(command, "commands"), f"{page.name}: `tearline {' '.join(words)}` names no command"
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for word in rest:
            if word.startswith("--"):
                option = word.split("=", 1)[0]
                assert option in known, f"{page.name}: `tearline {' '.join(words)}`: no option {option}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_variable_named_is_a_setting(page: Path):
    settings = {f"TEARLINE_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"\bTEARLINE_[A-Z0-9_]*[A-Z0-9]\b", page.read_text()))
    # Prefix mentions such as TEARLINE_FEED_RETRY_* are fine when some setting has that prefix.
    unknown = {v for v in named - settings - NOT_SETTINGS if not any(s.startswith(v + "_") for s in settings)}
    assert not unknown, f"{page.name} names variables that are not settings: {sorted(unknown)}"


def test_every_api_route_named_in_the_docs_is_served(app):
    served = set(app.openapi()["paths"])
    templates = [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$") for path in served]
    for page in PAGES:
        for path in set(re.findall(r"(/api/v1/[A-Za-z0-9_./{}-]*[A-Za-z0-9_}])", page.read_text())):
            path = re.sub(r"\$[A-Z_]+", "x", path).rstrip(".")
            assert any(t.match(path) for t in templates) or any(p.startswith(path + "/") for p in served), (
                f"{page.name} names {path}, which no route serves"
            )
