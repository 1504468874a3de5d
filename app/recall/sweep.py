"""Late recipients: nations served a version while its withdrawal was committing are notified too.

A read writes its served list just before its first byte, after its query. A read whose query ran
before a withdrawal committed, and whose served list was written after the withdrawing transaction
read the recipients, was served a version that transaction could not know it served. So every
object whose versions are withdrawn is *watched* for ``WATCH_S`` (``recall_watch``, written in
the withdrawing transaction, :func:`app.recall.service.watch`) and swept every :data:`SWEEP_PERIOD_S` by every instance: a nation
that received a version it may no longer see, and was not yet told, gets its notice then, as a
recall naming the one it completes as its parent. The sweep's write commits with its audit record.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from fastapi import FastAPI
from sqlalchemy import Engine, delete, select
from sqlmodel import Session, col

from app.audit.transaction import WriteFacts, audit_writes
from app.db.timestamps import now_us
from app.http.background import BackgroundWorker, run_with_app
from app.recall.models import Recall, RecallWatch
from app.recall.notice import WITHDRAWN_REASON
from app.recall.recipients import receipts
from app.recall.service import Deciding, Plan, RecallEnv, already_recalled, issue, versions_of

SWEEP_PERIOD_S = 2.0
SWEEPER = "system:recall-sweep"


def reconcile(session: Session, env: RecallEnv, object_ids: Iterable[str], collection_id: str | None = None) -> int:
    """Notify every nation that received a version of these objects it may no longer see and was not
    told of; returns how many recalls that issued. No commit."""
    versions = versions_of(session, object_ids)
    if not versions:
        return 0
    deciding = Deciding(session, env)
    deciding.load(v.label_id for v in versions)
    seen: dict[tuple[str, int], set[str]] = defaultdict(set)
    ranks = deciding.ranks(versions)
    originators: dict[str, str] = {}
    for version in sorted(versions, key=lambda v: v.pk):
        key = (version.object_id, version.version_us)
        seen[key] |= deciding.seers_of(version.label_id)
        originators.setdefault(version.object_id, version.originator)
    done = already_recalled(session, originators)
    late: dict[str, dict[str, dict[int, str | None]]] = defaultdict(dict)
    for receipt in receipts(session, originators, env.home_nation):
        key = (receipt.object_id, receipt.version_us)
        if key not in seen or receipt.nation in seen[key] or receipt.nation == originators[receipt.object_id]:
            continue
        if (receipt.object_id, receipt.version_us, receipt.nation) in done:
            continue
        late[receipt.object_id].setdefault(receipt.nation, {}).setdefault(receipt.version_us, receipt.collection_id)
    issued = 0
    for object_id, held in sorted(late.items()):
        parent = session.execute(
            select(Recall).where(col(Recall.object_id) == object_id).order_by(col(Recall.issued_us).desc()).limit(1)
        ).scalar_one_or_none()
        plan = Plan(
            object_id,
            parent.cause if parent is not None else "tightened",
            parent.reason if parent is not None else WITHDRAWN_REASON,
            parent.action if parent is not None else "destroy",
            parent.issued_by if parent is not None else "originator",
            parent_id=parent.id if parent is not None else None,
            held=held,
        )
        home = collection_id or next(v.collection_id for v in versions if v.object_id == object_id)
        if issue(session, env, plan, ranks[object_id], home) is not None:
            issued += 1
    return issued


def sweep_once(engine: Engine, env: RecallEnv) -> int:
    """Reconcile every watched object, then forget those watched long enough; returns recalls issued."""
    now = now_us()
    with Session(engine) as session:
        watched = list(session.execute(select(col(RecallWatch.object_id))).scalars())
    if not watched:
        return 0
    with Session(engine) as session:
        audit_writes(
            session,
            lambda: WriteFacts(
                request_id=f"sweep-{now}",
                subject=SWEEPER,
                nation=env.home_nation,
                roles=frozenset({"system"}),
                method="SWEEP",
                route="recall sweep",
                status=0,
                reason="late recipients of withdrawn versions",
            ),
        )
        issued = reconcile(session, env, watched)
        if issued:
            session.commit()  # with its audit record
        else:
            session.rollback()
    with Session(engine) as session, session.begin():
        # Bookkeeping of the sweep itself, not a change of what anyone is served: no audit record.
        session.execute(delete(RecallWatch).where(col(RecallWatch.until_us) < now))
    return issued


class RecallSweeper(BackgroundWorker):
    """A daemon thread sweeping watched objects every :data:`SWEEP_PERIOD_S`."""

    def __init__(self, engine: Engine, env: RecallEnv) -> None:
        super().__init__("tearline-recall-sweep", self._sweep, SWEEP_PERIOD_S)
        self.engine, self.env = engine, env

    def _sweep(self, stop: threading.Event) -> None:
        if not stop.is_set():
            sweep_once(self.engine, self.env)


def install_recall_sweep(app: FastAPI) -> None:
    """Run a :class:`RecallSweeper` on the app's engine for the app's lifetime."""
    run_with_app(
        app, "recall_sweeper", lambda application: RecallSweeper(application.state.engine, application.state.recall_env)
    )
