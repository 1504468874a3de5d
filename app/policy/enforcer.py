"""Role rights from ``policies/model.conf`` and ``policies/policy.csv``, evaluated with Casbin."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import casbin


class RoleRights:
    """Answers whether any of a principal's roles may perform an action on a resource."""

    def __init__(self, policies_dir: Path) -> None:
        model, policy = policies_dir / "model.conf", policies_dir / "policy.csv"
        for path in (model, policy):
            if not path.is_file():
                raise FileNotFoundError(f"policy file missing: {path}")
        self._enforcer = casbin.Enforcer(str(model), str(policy))
        self._lock = threading.Lock()  # pycasbin's enforcer is not thread-safe (see ReleasabilityPolicy)

    def allows(self, roles: Iterable[str], resource: str, action: str) -> bool:
        """True when at least one role has the right; no role means no right."""
        with self._lock:
            return any(self._enforcer.enforce(role, resource, action) for role in roles)
