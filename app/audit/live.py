"""``GET /api/v1/audit/live``: audit records as Server-Sent Events, as they are appended.

Each event is ``event: record``, ``id: <seq>``, ``data:`` the record as ``GET /records/{seq}``
returns it (its fields and its ``served`` list: which object versions went to which nation).
``Last-Event-ID`` (a seq) resumes after that record with nothing lost or repeated; ``after=<seq>``
starts there; otherwise the view starts at the head of the log. Optional filters (nation,
subject, decision, route prefix, collection, ``served=true``) narrow the view. The stream ends
with ``event: close`` (data ``{"reason": ...}``) when the auditor's token expires.

Wake-up, not a tight poll: SQLAlchemy events on the app's two engines see each ``INSERT`` into
``audit_record`` and, once its transaction has committed (when the connection returns to the
pool, as :mod:`app.items.changes` does for stored versions), wake this instance's open views.
Records that other processes append (the ``tearline`` command, other app instances) send this
instance no signal, so an open view that nothing woke reads again after :data:`FALLBACK_S` (at
most once a second). Under load a view reads at most every :data:`MIN_INTERVAL_S`, taking what
accumulated in one query. Each read is one indexed range query on ``seq`` and one on the served
lists, bounded by :data:`BATCH`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.sql.dml import Insert
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.audit import query
from app.audit.models import AuditRecord
from app.audit.routes import ID_LENGTH, ROUTE_LENGTH, Auditor
from app.auth.tokens import TokenError, TokenVerifier
from app.config.settings import Settings
from app.http.errors import ApiError

BATCH = 200  # records per read; a backlog (an old Last-Event-ID) is read batch after batch
FALLBACK_S = 1.0  # longest wait without a wake-up: records of other processes and instances
MIN_INTERVAL_S = 0.2  # shortest time between two reads of one view
EVENT_STREAM = "text/event-stream"
_PENDING = "tearline.audit.appended.pending"  # on a connection: its open transaction appended a record
_COMMITTED = "tearline.audit.appended.committed"  # ... and committed, until the connection is returned


class AuditWatch:
    """This instance's open live views: their wake-ups after commits that appended records, and their number.

    Everything runs on the event loop except :meth:`appended`, which any thread may call.
    """

    def __init__(self, max_views: int, max_per_principal: int) -> None:
        self.max_views, self.max_per_principal = max_views, max_per_principal
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0
        self._changed: asyncio.Event | None = None
        self._open: Counter[tuple[str, str]] = Counter()
        self.closing = asyncio.Event()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver wake-ups on ``loop``; a new loop (the app served again, as tests do) starts afresh."""
        if loop is self._loop:
            return
        self._loop, self._changed, self._open = loop, None, Counter()
        self.closing = asyncio.Event()

    def appended(self) -> None:
        """A transaction that appended audit records has committed. Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._open:
            return  # no view open on this instance: nobody to wake
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(self.wake)

    def wake(self) -> None:
        """Wake every waiting view (on the loop)."""
        self._generation += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    @property
    def generation(self) -> int:
        """Raised by each wake-up: a view notes it before reading, and waits only if it has not moved."""
        return self._generation

    async def wait(self, seen: int, timeout: float) -> None:
        """Wait until a wake-up after generation ``seen``, or ``timeout`` seconds."""
        if self._generation != seen or self.closing.is_set():
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def admit(self, key: tuple[str, str]) -> None:
        """Refuse (429) a view beyond the instance's or the principal's limit."""
        if self._open.total() >= self.max_views:
            raise ApiError(429, "This server holds as many live views as it allows; retry later.")
        if self._open[key] >= self.max_per_principal:
            raise ApiError(429, "You hold as many live views as you may; close one first.")

    @contextlib.contextmanager
    def holding(self, key: tuple[str, str]) -> Iterator[None]:
        """Count one open view of ``key`` while the block runs."""
        self._open[key] += 1
        try:
            yield
        finally:
            self._open[key] -= 1
            if self._open[key] <= 0:
                del self._open[key]


def watch_appends(engine: Engine, appended: Callable[[], None]) -> None:
    """Call ``appended()`` after each commit on ``engine`` whose transaction inserted audit records.

    SQLAlchemy's ``commit`` event fires just before the database commits, so the call waits for the
    connection's return to the pool: a view woken earlier would read before the record is visible.
    """
    table = AuditRecord.__table__

    def executed(connection: Any, statement: Any, *_: Any) -> None:
        if isinstance(statement, Insert) and statement.table is table:
            connection.info[_PENDING] = True

    def committing(connection: Any) -> None:
        if connection.info.pop(_PENDING, False):
            connection.info[_COMMITTED] = True

    def rolled_back(connection: Any) -> None:
        if connection.invalidated:
            return  # the connection died under the transaction: its info goes with it, and reading it raises
        connection.info.pop(_PENDING, None)

    def returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_COMMITTED, False):
            appended()

    event.listen(engine, "after_execute", executed)
    event.listen(engine, "commit", committing)
    event.listen(engine, "rollback", rolled_back)
    event.listen(engine.pool, "checkin", returned)


def install_watch(app: FastAPI) -> AuditWatch:
    """The app's :class:`AuditWatch` (``app.state.audit_live``), created and hooked to its engines once."""
    watch: AuditWatch | None = getattr(app.state, "audit_live", None)
    if watch is None:
        settings: Settings = app.state.settings
        watch = AuditWatch(settings.live_max_streams, settings.live_max_streams_per_principal)
        # Read records commit on the audit engine, writes' records with their data on the main one.
        for engine in {app.state.engine, app.state.audit_engine}:
            watch_appends(engine, watch.appended)
        app.state.audit_live = watch
    return watch


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    watch = install_watch(app)
    watch.attach(asyncio.get_running_loop())
    try:
        yield
    finally:
        watch.closing.set()  # open views end
        watch.wake()


router = APIRouter(prefix="/api/v1/audit", tags=["audit"], lifespan=_lifespan)


def read_after(
    engine: Engine, after: int, flt: query.RecordFilter, served_only: bool
) -> tuple[list[dict[str, Any]], int]:
    """Up to :data:`BATCH` records after seq ``after`` that match, with their served lists; and where to read on.

    The head is read first: every record up to it has committed (a record and the head move in
    one transaction), so the next read can start after the head when fewer than a batch matched,
    however many records the filters skipped.
    """
    conditions = [query.R.seq > after, *flt.where()]
    if served_only:
        conditions.append(query.R.served_count > 0)
    with engine.connect() as connection:
        head = _head_seq(connection)
        statement = select(*[query.R[c] for c in query.COLUMNS]).where(query.R.seq <= head, *conditions)
        rows = [dict(r._mapping) for r in connection.execute(statement.order_by(query.R.seq).limit(BATCH))]
        served_seqs = [row["seq"] for row in rows if row["served_count"]]
        served = (
            dict(
                connection.execute(
                    select(query.S.record_seq, query.S.pairs).where(query.S.record_seq.in_(served_seqs))
                ).all()
            )
            if served_seqs
            else {}
        )
    for row in rows:
        row["served"] = [{"id": o, "version": v} for o, v in orjson.loads(served.get(row["seq"]) or "[]")]
    return rows, (rows[-1]["seq"] if len(rows) >= BATCH else max(after, head))


def _asks_for_stream(accept: str) -> bool:
    """Whether an Accept header names the event-stream type itself (not only ``*/*`` or ``text/*``)."""
    return any(part.split(";")[0].strip().lower() == EVENT_STREAM for part in accept.split(","))


def _head_seq(connection: Connection) -> int:
    return int(connection.execute(select(query.H.seq).where(query.H.id == 1)).scalar_one())


def _head(engine: Engine) -> int:
    with engine.connect() as connection:
        return _head_seq(connection)


def _start(request: Request, after: int | None) -> int | None:
    """The seq to start after: ``Last-Event-ID``, else ``after``, else None (the head)."""
    header = request.headers.get("last-event-id")
    if header is None:
        return after
    text = header.strip()
    # ASCII digits only: str.isdigit() also accepts characters such as "²" that int() refuses.
    if not (text.isascii() and text.isdigit()) or int(text) > query.MAX_SEQ:
        raise ApiError(400, "Last-Event-ID must be the seq of an audit record (a whole number).")
    return int(text)


@router.get(
    "/live", summary="Audit records as they are written (Server-Sent Events)", response_class=EventSourceResponse
)
async def live(
    request: Request,
    principal: Auditor,
    after: Annotated[
        int | None, Query(ge=0, le=query.MAX_SEQ, description="Start after this seq (default: now)")
    ] = None,
    subject: Annotated[str | None, Query(max_length=ID_LENGTH)] = None,
    nation: Annotated[str | None, Query(pattern="^[A-Z]{3}$")] = None,
    decision: Literal["allow", "deny"] | None = None,
    route: Annotated[str | None, Query(max_length=ROUTE_LENGTH)] = None,
    collection_id: Annotated[str | None, Query(max_length=ID_LENGTH)] = None,
    served: Annotated[bool, Query(description="Only records that served object versions")] = False,
) -> EventSourceResponse:
    """Each new audit record with what it served, as it is written; resume with ``Last-Event-ID``.

    Send ``Accept: text/event-stream``: the answer never ends, and a client that did not ask for a
    stream (``*/*``, JSON) would wait on it for ever, so it gets 406 instead.
    """
    if not _asks_for_stream(request.headers.get("accept", "")):
        raise ApiError(406, f"The live view answers only with {EVENT_STREAM}: send Accept: {EVENT_STREAM}.")
    try:
        flt = query.record_filter(None, None, subject, nation, decision, route, collection_id)
    except query.FilterError as exc:
        raise ApiError(400, str(exc)) from None
    start = _start(request, after)
    app = request.app
    watch = install_watch(app)  # normally done at startup (the router's lifespan)
    watch.attach(asyncio.get_running_loop())
    key = (principal.nation, principal.subject)
    watch.admit(key)
    engine: Engine = app.state.engine
    if start is None:
        start = await asyncio.to_thread(_head, engine)
    token = request.headers["authorization"].split(None, 1)[1].strip()  # the dependency verified it
    settings: Settings = app.state.settings
    stream = _records(watch, key, engine, app.state.token_verifier, token, settings, start, flt, served)
    return EventSourceResponse(
        stream,
        ping=0,  # keep-alives come from the stream itself (app/live/routes.py says why)
        send_timeout=settings.live_send_timeout_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _records(
    watch: AuditWatch,
    key: tuple[str, str],
    engine: Engine,
    verifier: TokenVerifier,
    token: str,
    settings: Settings,
    after: int,
    flt: query.RecordFilter,
    served_only: bool,
) -> AsyncIterator[ServerSentEvent]:
    """Read, send, wait for a wake-up (or the fallback period), until the token lapses or the app stops."""
    checked = sent = time.monotonic()
    with watch.holding(key):
        while not watch.closing.is_set():
            generation = watch.generation
            rows, after = await asyncio.to_thread(read_after, engine, after, flt, served_only)
            read_at = time.monotonic()
            for row in rows:
                yield ServerSentEvent(orjson.dumps(row).decode(), event="record", id=str(row["seq"]))
                sent = read_at
            if read_at - sent >= settings.live_keepalive_seconds:
                yield ServerSentEvent(comment="keep-alive")
                sent = read_at
            if read_at - checked >= settings.live_recheck_seconds:
                checked = read_at
                if not await asyncio.to_thread(_token_valid, verifier, token):
                    yield ServerSentEvent(
                        orjson.dumps({"reason": "the token is no longer valid"}).decode(), event="close"
                    )
                    return
            if len(rows) >= BATCH:
                continue  # a backlog: read on at once
            await watch.wait(generation, min(FALLBACK_S, settings.live_keepalive_seconds))
            await asyncio.sleep(max(0.0, MIN_INTERVAL_S - (time.monotonic() - read_at)))


def _token_valid(verifier: TokenVerifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except TokenError:
        return False
    return True
