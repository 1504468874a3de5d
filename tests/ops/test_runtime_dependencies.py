"""The image installs only the runtime dependencies (no test extras): every third-party module
the application imports must come from one of them, or the container fails at start while
every test, run in a venv with the test extras, still passes."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

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
