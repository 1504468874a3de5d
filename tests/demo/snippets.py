"""The examples of the documentation, as runnable blocks: ```sh and ```python blocks of README.md and docs/.

A block runs unless the line before it (blank lines aside) is a visible marker
``<!-- not run: REASON -->``: for what a test cannot do (the demo itself, Docker, root, a real
PostgreSQL deployment, a partner's server). A marker before anything but a runnable block is an
error, so markers cannot drift away from the block they excuse.

The blocks of one page run in order, in one shell session and one Python session, as if pasted
one after the other into a terminal and a REPL in which the demo's ``export`` lines were pasted
first. The shell runs with ``set -euo pipefail`` (an unset variable, such as a placeholder nobody
filled in, is an error) and ``curl`` fails on an HTTP error status. Python examples written for a
real deployment name ``https://tearline.example.org`` and a literal ``"PARTNER_TOKEN"`` (any
``"*_TOKEN"`` string the demo exports, outside a subscript): those are replaced by the demo's URL
and token, as the reader would replace them.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.config.settings import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
LANGUAGES = {"sh": "shell", "bash": "shell", "python": "python"}
MARKER = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})\s*(?P<info>[^`\s]*)[^`]*$")
# Base URLs the examples use for the server; all of them mean the demo the test runs.
BASE_URLS = ("http://127.0.0.1:8000", "https://tearline.example.org")
PAGE_LIMIT_S = 300  # a guard against a hung example, not a speed requirement

PYTHON_SESSION = """\
import json, sys
blocks, status = json.load(open(sys.argv[1])), open(sys.argv[2], "a")
namespace = {"__name__": "__main__"}
for label, code in blocks:
    print(f"\\n=== {label}", file=sys.stderr, flush=True)
    exec(compile(code, label, "exec"), namespace)
    status.write(label + "\\n")
    status.flush()
"""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, what language, its code, and why it is not run (if it is not)."""

    page: str
    line: int
    language: str
    code: str
    skip: str | None

    @property
    def label(self) -> str:
        """``page:line`` of the opening fence."""
        return f"{self.page}:{self.line}"


def page_name(path: Path) -> str:
    """The page's path from the repository root."""
    return path.relative_to(REPO_ROOT).as_posix()


def _fences(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """(opening line index, closing line index, info word, indent) of every fenced block."""
    found = []
    opened: tuple[int, str, str, str] | None = None
    for index, line in enumerate(lines):
        match = FENCE.match(line)
        if not match:
            continue
        if opened is None:
            opened = (index, match["fence"], match["info"], match["indent"])
        elif match["fence"].startswith(opened[1]) and not match["info"]:
            found.append((opened[0], index, opened[2], opened[3]))
            opened = None
    return found


def _marker_before(lines: list[str], index: int) -> tuple[int, str] | None:
    """The ``not run`` marker on the last non-blank line before ``index``, with its line index."""
    for previous in range(index - 1, -1, -1):
        if lines[previous].strip():
            match = MARKER.match(lines[previous])
            return (previous, match["reason"]) if match else None
    return None


def page_blocks(path: Path) -> list[Block]:
    """The runnable-language blocks of a page, in order, each with its ``not run`` reason if marked."""
    lines = path.read_text().splitlines()
    blocks = []
    for start, end, info, indent in _fences(lines):
        language = LANGUAGES.get(info.lower())
        if language is None:
            continue
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start + 1 : end]]
        marker = _marker_before(lines, start)
        blocks.append(
            Block(page_name(path), start + 1, language, "\n".join(body) + "\n", marker[1] if marker else None)
        )
    return blocks


def stray_markers(path: Path) -> list[int]:
    """Lines of ``not run`` markers that do not stand right before a runnable block."""
    lines = path.read_text().splitlines()
    excused = set()
    for start, _, info, _ in _fences(lines):
        marker = _marker_before(lines, start)
        if marker and info.lower() in LANGUAGES:
            excused.add(marker[0])
    return [index + 1 for index, line in enumerate(lines) if MARKER.match(line) and index not in excused]


def all_blocks() -> list[Block]:
    """Every runnable-language block of README.md and docs/, page by page."""
    return [block for page in PAGES for block in page_blocks(page)]


@dataclass(frozen=True)
class PageRun:
    """What running a page's blocks left: the labels of the blocks that completed, and the output."""

    done: frozenset[str]
    log: str

    def explain(self, block: Block) -> str:
        """Why ``block`` did not complete: it failed (with the output), or an earlier block did."""
        started = re.findall(r"^=== (\S+)$", self.log, re.MULTILINE)
        failed = started[-1] if started else "(none)"
        where = "failed" if failed == block.label else f"was not reached: {failed} failed first"
        return f"{block.label} {where}. Output of the page's examples (end):\n{self.log[-6000:]}"


def _shell_script(blocks: list[Block], status: Path) -> str:
    parts = [
        "set -euo pipefail",
        # An HTTP error status is a failed example, not a printed error body.
        'curl() { command curl --fail-with-body "$@"; }',
    ]
    for block in blocks:
        parts += [
            f"printf '\\n=== %s\\n' {shlex.quote(block.label)} >&2",
            block.code,
            f"printf '%s\\n' {shlex.quote(block.label)} >> {shlex.quote(str(status))}",
        ]
    return "\n".join(parts) + "\n"


def _python_code(block: Block, base_url: str, tokens: dict[str, str]) -> str:
    code = block.code
    for url in BASE_URLS:
        code = code.replace(url, base_url)
    for name, value in tokens.items():
        # A quoted placeholder, "PARTNER_TOKEN", but not a key such as os.environ["PARTNER_TOKEN"].
        code = re.sub(rf'(?<!\[)"{name}"', json.dumps(value).replace("\\", "\\\\"), code)
    return code


def run_page(blocks: list[Block], *, cwd: Path, env: dict[str, str], base_url: str) -> PageRun:
    """Run a page's runnable blocks (those not marked) in ``cwd``: the shell ones, then the Python ones."""
    cwd.mkdir(parents=True, exist_ok=True)
    status, log_path = cwd / ".examples-done", cwd / ".examples-log"
    status.write_text("")
    tokens = {name: value for name, value in env.items() if name.endswith("_TOKEN")}
    shell = [b for b in blocks if b.language == "shell" and b.skip is None]
    python = [b for b in blocks if b.language == "python" and b.skip is None]
    with log_path.open("w") as log:
        ok = True
        if shell:
            script = _shell_script(shell, status)
            for url in BASE_URLS:
                script = script.replace(url, base_url)
            (cwd / ".examples.sh").write_text(script)
            ran = subprocess.run(
                ["bash", ".examples.sh"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=PAGE_LIMIT_S
            )
            ok = ran.returncode == 0
        if python and ok:
            source = cwd / ".examples-python.json"
            source.write_text(json.dumps([(b.label, _python_code(b, base_url, tokens)) for b in python]))
            subprocess.run(
                [sys.executable, "-c", PYTHON_SESSION, str(source), str(status)],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=PAGE_LIMIT_S,
            )
    return PageRun(frozenset(status.read_text().split()), log_path.read_text(errors="replace"))
