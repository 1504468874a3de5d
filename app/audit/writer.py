"""Group commit for the audit records of reads: concurrent requests share one transaction.

Every audited request's record is appended under the audit head's lock, which serialises every
request of every instance (:mod:`app.audit.service`). Written one transaction per record, the
head lock is held for several round trips each time, which capped PostgreSQL at about 64
records a second under load. A :class:`RecordWriter` is one thread per app that takes whatever
records are waiting and appends them in one transaction: one lock, one statement per table, one
commit. Nothing is served before its record commits: each request waits for its own batch.

A batch that fails is written again one record per transaction, so one record the database
refuses cannot take others' requests down with it; a request whose record still fails gets
:class:`AuditUnavailable` (the middleware answers 503).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from app.audit.service import AuditUnavailable, RecordFields, append_records, signer_for

log = logging.getLogger(__name__)

MAX_BATCH = 256
# The thread ends after this long without work and starts again on the next record, so an app
# that is dropped without shutting down (tests, the CLI) leaves no thread behind for long.
IDLE_EXIT_S = 5.0


@dataclass
class _Waiting:
    build: Callable[[], RecordFields]
    done: Future[int] = field(default_factory=Future)


class RecordWriter:
    """Appends records in batches on ``engine``; :meth:`submit` is safe from any thread."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH) -> None:
        self.engine, self.max_batch = engine, max_batch
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Held by the thread while it runs: checking a pooled connection out per batch cost a ping.
        self._connection: Connection | None = None

    def submit(self, build: Callable[[], RecordFields]) -> Future[int]:
        """Queue a record; ``build`` runs on the writer's thread. The future gives its sequence
        number once committed, or raises :class:`AuditUnavailable`."""
        waiting = _Waiting(build)
        with self._lock:  # with _run's exit check, no record is queued for a thread that has ended
            self._queue.put(waiting)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tearline-audit-writer", daemon=True)
                self._thread.start()
        return waiting.done

    def write(self, build: Callable[[], RecordFields]) -> int:
        """Queue a record and wait until it is committed (for callers on a worker thread)."""
        return self.submit(build).result()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        self._close()
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as exc:  # the thread must outlive any batch, or every request would wait
                log.exception("audit batch not written")
                for waiting in batch:
                    _settle(waiting.done, exception=AuditUnavailable.of(exc))

    def _write(self, batch: list[_Waiting]) -> None:
        built: list[tuple[_Waiting, RecordFields]] = []
        for waiting in batch:
            try:
                built.append((waiting, waiting.build()))
            except Exception as exc:  # noqa: BLE001 - that request fails alone; the others are written
                _settle(waiting.done, exception=exc)
        if not built:
            return
        try:
            seqs = self._append([record for _, record in built])
        except Exception:  # noqa: BLE001 - each record is tried alone below, so a failure is its own
            log.warning("audit batch of %d records failed; writing them one by one", len(built))
            for waiting, record in built:
                self._write_one(waiting, record)
            return
        for (waiting, _), seq in zip(built, seqs, strict=True):
            _settle(waiting.done, seq)

    def _write_one(self, waiting: _Waiting, record: RecordFields) -> None:
        try:
            _settle(waiting.done, self._append([record])[0])
        except Exception as exc:  # reaches the request, which answers 503
            log.exception("audit record not written")
            _settle(waiting.done, exception=AuditUnavailable.of(exc))

    def _append(self, records: list[RecordFields]) -> list[int]:
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            with self._connection.begin():
                return append_records(self._connection, signer_for(self.engine), records)
        except SQLAlchemyError as exc:
            self._close()  # the next batch starts on a new connection (the database may have restarted)
            raise AuditUnavailable.of(exc) from exc

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except SQLAlchemyError:
                log.warning("could not close the audit writer's connection", exc_info=True)


def _settle(done: Future[int], seq: int | None = None, *, exception: BaseException | None = None) -> None:
    """Give a request its outcome, unless it went away: asyncio cancels the future of a request
    whose client disconnected. Its record is written all the same (the request happened)."""
    try:
        if exception is not None:
            done.set_exception(exception)
        elif seq is not None:
            done.set_result(seq)
    except InvalidStateError:
        pass
