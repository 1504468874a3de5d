"""Auditor API under ``/api/v1/audit``: read, export and verify; nothing here changes a record.

Every route needs the ``audit read`` right (policies/policy.csv). Only GET routes
exist, so no one can edit or delete a record through the API (other methods: 405).

Every parameter is range-checked before a query runs: sequence numbers within 63 bits, times
that stay within years 1-9999 in UTC, text no wider than the column it is compared with and
without NUL. Anything else is a 400 problem document, never a 500.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from itertools import chain, islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from app.audit import query
from app.audit.service import signer_for
from app.audit.verify import verify_chain
from app.auth.principal import Principal
from app.db.columns import STIX_ID_LENGTH
from app.http.dependencies import require_right
from app.http.errors import ApiError

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require_right("audit", "read"))]
MAX_PAGE = 1000
Seq = Annotated[int, Path(ge=1, le=query.MAX_SEQ)]
# Widths of the columns each text filter is compared with: a longer value matches no record.
ID_LENGTH = 255
ROUTE_LENGTH = 1024


class ExportFormat(str, Enum):
    """Formats of an export."""

    ndjson = "ndjson"
    csv = "csv"


def _filter(
    since: datetime | None = None,
    until: datetime | None = None,
    subject: Annotated[str | None, Query(max_length=ID_LENGTH)] = None,
    nation: str | None = Query(None, pattern="^[A-Z]{3}$"),
    decision: Literal["allow", "deny"] | None = None,
    route: Annotated[str | None, Query(max_length=ROUTE_LENGTH)] = None,
    collection_id: Annotated[str | None, Query(max_length=ID_LENGTH)] = None,
    object_id: Annotated[str | None, Query(max_length=STIX_ID_LENGTH)] = None,
) -> query.RecordFilter:
    try:
        return query.record_filter(since, until, subject, nation, decision, route, collection_id, object_id)
    except query.FilterError as exc:
        raise ApiError(400, str(exc)) from None


@router.get("/records", summary="Audit records, filtered, in sequence order (keyset paging)", response_model=None)
def list_records(
    request: Request,
    _: Auditor,
    flt: query.RecordFilter = Depends(_filter),
    after: Annotated[int | None, Query(ge=0, le=query.MAX_SEQ, description="`next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    order: Annotated[Literal["asc", "desc"], Query(description="`desc`: newest first")] = "asc",
) -> dict[str, Any]:
    """Records matching the filters, in sequence order; pass `next` as `after` to get the following page."""
    rows, next_after = query.records_page(
        request.app.state.engine, flt, after=after, limit=limit, descending=order == "desc"
    )
    return {"records": rows, "next": next_after}


@router.get("/records/{seq}", summary="One audit record with the exact versions it served", response_model=None)
def get_record(request: Request, _: Auditor, seq: Seq) -> dict[str, Any]:
    """The record with sequence number `seq` and the (id, version) pairs it served; 404 if there is none."""
    record = query.record_with_served(request.app.state.engine, seq)
    if record is None:
        raise ApiError(404, "No audit record with that sequence number.")
    return record


@router.get("/recipients/{object_id}", summary="Which nations received an object: every version", response_model=None)
def get_recipients(
    request: Request, _: Auditor, object_id: Annotated[str, Path(max_length=STIX_ID_LENGTH)]
) -> dict[str, Any]:
    """Each version of the object that was served, to which nation, first and last time, and how often."""
    if "\x00" in object_id:  # no id holds one, and PostgreSQL refuses it in a query
        raise ApiError(400, "object_id must not contain a NUL character.")
    return {"object_id": object_id, "recipients": query.recipients(request.app.state.engine, object_id)}


@router.get("/export", summary="Stream matching records with their served versions, NDJSON or CSV")
def export(
    request: Request, _: Auditor, flt: query.RecordFilter = Depends(_filter), format: ExportFormat = ExportFormat.ndjson
) -> StreamingResponse:
    """Every matching record with the versions it served, streamed as NDJSON or CSV."""
    records = query.iter_records(request.app.state.engine, flt)
    # Read the first batch before the status line is sent: an export that cannot run answers an
    # error (503 when the database is unavailable), never a 200 with an empty body.
    first = list(islice(records, 1))
    records = chain(first, records)
    if format is ExportFormat.csv:
        return StreamingResponse(
            iterate_in_threadpool(query.csv_lines(records)),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    return StreamingResponse(iterate_in_threadpool(query.ndjson_lines(records)), media_type="application/x-ndjson")


@router.get("/verify", summary="Verify the hash chain (whole or a range); reports the first broken record")
def verify(
    request: Request,
    _: Auditor,
    start: Annotated[int | None, Query(ge=1, le=query.MAX_SEQ)] = None,
    end: Annotated[int | None, Query(ge=1, le=query.MAX_SEQ)] = None,
) -> JSONResponse:
    """Check the records' hashes and links, served lists, index, checkpoints and head; names the first fault."""
    if start and end and start > end:
        raise ApiError(400, "start must not exceed end.")
    engine = request.app.state.engine
    report = verify_chain(engine, signer_for(engine), start=start, end=end)
    return JSONResponse(report.as_dict())
