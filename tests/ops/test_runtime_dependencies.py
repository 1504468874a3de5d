"""The image and `make demo` install only the runtime dependencies (no test or bench extras):
every third-party module the application imports must come from one of them, or the container
and the demo fail at start while every test, run in a venv with the extras, still passes. The
check reads the installed distributions' metadata (no install); the Makefile's two stamps and the
Dockerfile's install lines are checked too."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from app.config.settings import REPO_ROOT

APP = REPO_ROOT / "app"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirement: str) -> list[str]:
    """The distribution a requirement names, and those its requested extras add."""
    spec = requirement.partition(";")[0].strip()
    base = re.split(r"[\s\[<>=!~(]", spec, maxsplit=1)[0]
    names = [base]
    extras = re.search(r"\[([^\]]+)\]", spec)
    for extra in extras.group(1).split(",") if extras else []:
        try:
            for sub in requires(base) or []:
                if f'extra == "{extra.strip()}"' in sub.partition(";")[2]:
                    names.append(re.split(r"[\s\[<>=!~(]", sub.partition(";")[0].strip(), maxsplit=1)[0])
        except PackageNotFoundError:
            pass
    return names


def _runtime_closure() -> set[str]:
    """What installing the project without extras installs: [project] dependencies of
    pyproject.toml (the file the image builds from) and, recursively, their requirements."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    seen: set[str] = set()
    pending = [name for requirement in project["dependencies"] for name in _requirement_names(requirement)]
    while pending:
        name = _canonical(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = requires(name) or []
        except PackageNotFoundError:
            continue
        for requirement in requirements:
            if "extra ==" not in requirement.partition(";")[2]:
                pending.extend(_requirement_names(requirement))
    return seen


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"app", "__future__"}


def test_every_module_the_app_imports_is_a_runtime_dependency():
    installed = packages_distributions()
    runtime = _runtime_closure()
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        distributions = {_canonical(d) for d in installed.get(module, [])}
        assert distributions, f"app imports {module!r}, which no installed distribution provides"
        if not distributions & runtime:
            missing[module] = sorted(distributions)
    assert not missing, (
        f"app imports modules that only test or bench extras install: {missing}; "
        "add them to [project] dependencies in pyproject.toml"
    )


# The lean install: `make demo` and the image install the runtime dependencies only, `make test`
# adds the extras; each installs again only when pyproject.toml changes.

FAKE_PYTHON = """#!/bin/sh
printf '%s\\n' "$*" >> "$(dirname "$0")/../../pip.log"
"""


def _make(work: Path, target: str) -> list[str]:
    """Run ``make target`` in ``work`` (a copy of the Makefile and a fake venv python); the pip
    commands it ran."""
    log = work / "pip.log"
    log.unlink(missing_ok=True)
    make = shutil.which("make")
    assert make, "make is missing: the README's two commands are make targets"
    subprocess.run([make, "-s", target], cwd=work, check=True, capture_output=True, text=True, timeout=60)
    return log.read_text().splitlines() if log.exists() else []


def test_demo_installs_the_runtime_and_test_adds_the_extras_each_once_per_pyproject_change(tmp_path):
    work = tmp_path / "checkout"
    (work / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Makefile", work / "Makefile")
    pyproject = work / "pyproject.toml"
    pyproject.write_text("[project]\n")
    python = work / ".venv" / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    old = time.time() - 100
    os.utime(pyproject, (old, old))

    assert _make(work, "runtime") == ["-m pip install --upgrade pip", "-m pip install -e ."]
    assert _make(work, "runtime") == []
    assert _make(work, "venv") == ["-m pip install --upgrade pip", "-m pip install -e .[test,bench]"]
    assert _make(work, "venv") == []
    assert _make(work, "runtime") == []  # the full install covers the runtime one
    os.utime(pyproject)  # pyproject.toml changed
    assert _make(work, "runtime") == ["-m pip install --upgrade pip", "-m pip install -e ."]
    assert _make(work, "venv") == ["-m pip install --upgrade pip", "-m pip install -e .[test,bench]"]

    # The two commands of the README use them: `make demo` the runtime, `make test` the full install.
    dry = {
        target: subprocess.run(
            ["make", "-n", "-B", target], cwd=REPO_ROOT, check=True, capture_output=True, text=True
        ).stdout
        for target in ("demo", "test")
    }
    assert "pip install -e .\n" in dry["demo"] and "[test" not in dry["demo"]
    assert "pip install -e '.[test,bench]'" in dry["test"]


def test_the_image_installs_the_project_without_extras():
    joined = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [line for line in joined.splitlines() if "pip install" in line or "pip wheel" in line]
    assert any("-e ." in line for line in installs)
    assert not any(".[" in line for line in installs), installs
