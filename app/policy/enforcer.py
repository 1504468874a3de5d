"""Role rights from ``policies/model.conf`` and ``policies/policy.csv``, evaluated with Casbin."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import casbin

MAX_CACHED_ANSWERS = 4096
"""Bound on remembered answers (roles come from signed tokens, but memory stays bounded whatever they say)."""


class RoleRights:
    """Answers whether any of a principal's roles may perform an action on a resource."""

    def __init__(self, policies_dir: Path) -> None:
        model, policy = policies_dir / "model.conf", policies_dir / "policy.csv"
        for path in (model, policy):
            if not path.is_file():
                raise FileNotFoundError(f"policy file missing: {path}")
        self._enforcer = casbin.Enforcer(str(model), str(policy))
        self._lock = threading.Lock()  # pycasbin's enforcer is not thread-safe (see ReleasabilityPolicy)
        # The rules are read once, here, so each answer holds for the life of this object: a Casbin
        # evaluation cost ~0.1 ms, and a TAXII read asks one per collection (which it may read).
        self._answers: dict[tuple[str, str, str], bool] = {}

    def allows(self, roles: Iterable[str], resource: str, action: str) -> bool:
        """True when at least one role has the right; no role means no right."""
        return any(self._allows(role, resource, action) for role in roles)

    def _allows(self, role: str, resource: str, action: str) -> bool:
        key = (role, resource, action)
        answer = self._answers.get(key)
        if answer is None:
            with self._lock:
                answer = bool(self._enforcer.enforce(role, resource, action))
            if len(self._answers) < MAX_CACHED_ANSWERS:
                self._answers[key] = answer
        return answer
