"""Visible label ids per principal, with Casbin evaluated once per (principal, label).

Labels are immutable once interned and only ever added, so a principal's
visible set grows by evaluating just the labels created since it was last
asked. The cache is dropped when the policy epoch in the database changes
(partners or groups edited, by any instance) or when the policy files change
on disk. A request costs one small query plus, at most, one evaluation per new
label.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.markings.labels import LabelSpec
from app.markings.mappings import Mappings
from app.markings.models import Label
from app.markings.service import label_spec
from app.partners.service import effective_groups
from app.policy.models import PolicyState
from app.policy.releasability import ReleasabilityPolicy


def _principal_key(principal: Principal) -> tuple[str, int, bool]:
    # Only what the decision reads: two tokens of one nation at one clearance see the same labels.
    return principal.nation, principal.clearance, principal.is_home


def _files_stamp(paths: tuple[Path, ...]) -> tuple[int, ...]:
    """Modification times of the policy files, so an edited policy takes effect without a restart."""
    return tuple(path.stat().st_mtime_ns for path in paths)


class VisibilityCache:
    """Thread-safe cache of visible label ids, one entry per distinct principal key."""

    def __init__(self, policies_dir: Path, mappings: Mappings, home_nation: str) -> None:
        self._policies_dir = policies_dir
        self._home_nation = home_nation
        self._base_mappings = mappings
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._stamp: tuple[int, ...] = ()
        self._policy: ReleasabilityPolicy | None = None
        self._facts: dict[int, LabelSpec] = {}
        self._decided: dict[tuple[str, int, bool], tuple[set[int], set[int]]] = {}
        self.evaluations = 0
        """Casbin evaluations so far; benchmarks read it to show the cost is per label, not per object."""
        self.decision_seconds = 0.0
        """Time spent in :meth:`visible_label_ids` so far (queries, cache and Casbin); read by benchmarks."""
        self.hits = 0
        """Lookups answered with no evaluation at all (exported as a Prometheus counter)."""

    @property
    def policy(self) -> ReleasabilityPolicy:
        """The policy as last loaded by :meth:`visible_label_ids`."""
        if self._policy is None:
            raise RuntimeError("the policy is loaded on the first visibility request")
        return self._policy

    def _reload(self, session: Session, epoch: int, stamp: tuple[int, ...]) -> None:
        mappings = dataclasses.replace(self._base_mappings, groups=effective_groups(session, self._base_mappings))
        self._policy = ReleasabilityPolicy(self._policies_dir, mappings, self._home_nation)
        self._epoch, self._stamp = epoch, stamp
        self._decided.clear()

    def _load_new_labels(self, session: Session) -> None:
        # Ids are not loaded by "greater than the last seen": on PostgreSQL a lower id can commit later.
        missing = set(session.execute(select(col(Label.id))).scalars()) - self._facts.keys()
        if missing:
            for label in session.execute(select(Label).where(col(Label.id).in_(missing))).scalars():
                self._facts[label.id] = label_spec(label)

    def current_policy(self, session: Session) -> tuple[ReleasabilityPolicy, tuple[int, tuple[int, ...]]]:
        """The policy as it stands now (reloaded if the epoch or the files changed), evaluating nothing,
        and its generation: decisions made under one generation hold until it changes."""
        epoch = session.execute(select(col(PolicyState.epoch))).scalar_one()
        stamp = _files_stamp((self._policies_dir / "model.conf", self._policies_dir / "policy.csv"))
        with self._lock:
            if epoch != self._epoch or stamp != self._stamp or self._policy is None:
                self._reload(session, epoch, stamp)
            return self.policy, (epoch, stamp)

    def visible_label_ids(self, session: Session, principal: Principal) -> list[int]:
        """The ids of every label ``principal`` may see, evaluating only labels not yet decided for it."""
        started = time.perf_counter()
        try:
            return self._visible_label_ids(session, principal)
        finally:
            self.decision_seconds += time.perf_counter() - started

    def _visible_label_ids(self, session: Session, principal: Principal) -> list[int]:
        epoch, label_count = session.execute(
            select(col(PolicyState.epoch), select(func.count(col(Label.id))).scalar_subquery())
        ).one()
        stamp = _files_stamp((self._policies_dir / "model.conf", self._policies_dir / "policy.csv"))
        with self._lock:
            if epoch != self._epoch or stamp != self._stamp or self._policy is None:
                self._reload(session, epoch, stamp)
            if label_count != len(self._facts):
                self._load_new_labels(session)
            decided, visible = self._decided.setdefault(_principal_key(principal), (set(), set()))
            if len(decided) == len(self._facts):
                self.hits += 1
            else:
                for label_id in self._facts.keys() - decided:
                    self.evaluations += 1
                    if self.policy.allows(principal, self._facts[label_id]):
                        visible.add(label_id)
                    decided.add(label_id)
            return sorted(visible)

    def decide(self, session: Session, principal: Principal, label_id: int) -> bool:
        """Whether ``principal`` may see one label."""
        return label_id in self.visible_label_ids(session, principal)
