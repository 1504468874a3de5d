"""Fixtures for the pure marking tests: the shipped mapping tables and editable copies of them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from app.config.settings import REPO_ROOT
from app.markings.mappings import Mappings, load_mappings

MAPPINGS_DIR = REPO_ROOT / "stix_mappings"
FIXTURES = Path(__file__).parent / "fixtures"
HOME = "NLD"


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    """The tables shipped in ``stix_mappings/``."""
    return load_mappings(MAPPINGS_DIR)


@pytest.fixture
def mappings_copy(tmp_path: Path) -> Path:
    """A writable copy of ``stix_mappings/`` to corrupt or extend."""
    target = tmp_path / "stix_mappings"
    shutil.copytree(MAPPINGS_DIR, target)
    return target


@pytest.fixture
def edit_json() -> Callable[[Path, Callable[[dict], None]], None]:
    """Edit a JSON file in place: ``edit_json(path, lambda data: ...)``."""

    def edit(path: Path, change: Callable[[dict], None]) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    return edit


def load_fixture(name: str) -> dict:
    """A STIX bundle from ``tests/markings/fixtures``."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))
