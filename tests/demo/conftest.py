"""A newcomer's demo: `tearline demo --no-serve` in a fresh working directory, then `tearline serve` there.

Nothing is configured through ``TEARLINE_*`` variables: both commands run with every one of them
removed from the environment, from the working directory the demo was seeded in, so the
instance is found the way a newcomer's shell finds it (``./data/tearline.env``). The server
listens on a free port of 127.0.0.1; the tokens are the ones the demo printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import _free_port, _wait_until_healthy

VENV_BIN = Path(sys.executable).parent
TEARLINE = VENV_BIN / "tearline"
EXPORT = re.compile(r"^export (?P<name>[A-Z_]+)=(?P<value>\S+)$", re.MULTILINE)
STOP_LIMIT_S = 15


def newcomer_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any TEARLINE_* variable, with the virtualenv activated."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEARLINE_")}
    # What `. .venv/bin/activate` does: the README tells newcomers to activate it.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """Run the installed `tearline` command in ``cwd`` as a newcomer would (no TEARLINE_* variables)."""
    return subprocess.run(
        [str(TEARLINE), *args],
        cwd=cwd,
        env=env or newcomer_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class DemoSite:
    """The seeded, served demo: where it runs, what the demo printed, and the variables it exported."""

    work: Path
    base_url: str
    printed: str
    exports: dict[str, str]

    def token(self, variable: str) -> str:
        """A token the demo printed, by the shell variable it exported it as."""
        return self.exports[variable]


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Iterator[DemoSite]:
    """`tearline demo --no-serve` then `tearline serve`, both in a fresh working directory."""
    if not TEARLINE.exists():
        pytest.fail(f"{TEARLINE} is missing: install the project into the virtualenv (make venv)")
    work = tmp_path_factory.mktemp("newcomer")
    port = _free_port()
    seeded = cli("demo", "--no-serve", "--port", str(port), cwd=work, timeout=300)
    assert seeded.returncode == 0, f"tearline demo failed:\n{seeded.stdout}\n{seeded.stderr}"
    exports = {m["name"]: m["value"] for m in EXPORT.finditer(seeded.stdout)}
    log_path = work / "server.log"
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(TEARLINE), "serve", "--port", str(port)],
            cwd=work,
            env=newcomer_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(base_url, process, log_path)
        yield DemoSite(work, base_url, seeded.stdout, exports)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
