"""Fixtures of the command-line tests: a clean Tearline environment in a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """A clean Tearline environment in ``tmp_path``; the working directory is ``tmp_path`` too."""
    for name in list(os.environ):
        if name.startswith("TEARLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    values = {
        "TEARLINE_DATA_DIR": str(tmp_path / "data"),
        "TEARLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'tearline.sqlite'}",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
