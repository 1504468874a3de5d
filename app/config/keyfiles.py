"""Development key files: a secret made once and kept under ``data_dir``, shared by every process.

Used only where production requires a configured secret; in development a per-process random
key would not do, because what it protects (audit checkpoints, stored feed credentials) must
still verify or decrypt after a restart.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def persistent_key(path: Path, make: Callable[[], bytes]) -> bytes:
    """The key in ``path``, created with ``make()`` (mode 0600) if absent; safe against racing processes."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        candidate.write_bytes(make())
        candidate.chmod(0o600)
        try:
            # link() fails if another process made the file first; then both use that one.
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink(missing_ok=True)
    return path.read_bytes().strip()
