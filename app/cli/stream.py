"""``tearline stream follow``: a collection's live event stream, followed from a terminal.

Each event of ``GET /taxii2/{api_root}/collections/{id}/events/`` carries the objects the token's
principal may see, as a TAXII pull would serve them. They are printed one JSON document per line
(``--summary``: type, id and banner), and the event's cursor goes to stderr (``--show-cursor``:
to stdout), so that ``--last-event-id`` resumes where the output stops. A dropped connection is
resumed with ``Last-Event-ID`` after a back-off (tenacity); the server's ``event: close`` ends the
command with its reason.

Exit status: 0 after ``--max-events``, 2 when the server refuses (401, 403, 404, 400, 406), 3 when
the server closed the stream, 1 when reconnecting gave up (``--max-retries``), 130 on Ctrl-C.

httpx, httpx-sse and tenacity are imported when the command runs, not with this module:
``tearline --help`` loads every command module and must start quickly.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.common import DEFAULT_COLLECTION_ID, REFUSED, UNUSABLE, fail

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState

stream_app = typer.Typer(help="Live event streams: follow a collection from a terminal.", no_args_is_help=True)

CLOSED = 3
INTERRUPTED = 130
FIRST_WAIT_S = 1.0  # back-off before the first reconnection; doubles per failure in a row
LONGEST_WAIT_S = 30.0
EVENT_STREAM = "text/event-stream"


class Refused(Exception):
    """The server refused the stream (401, 403, 404, 400, 406): reconnecting would not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Unavailable(Exception):
    """A 429 or 5xx answer: try again later (after Retry-After, when the server sends one)."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"{status}: {message}")
        self.retry_after = retry_after


class Dropped(Exception):
    """The connection ended without the server's ``event: close``."""


@dataclass
class Output:
    """How events are printed: objects on stdout, cursors on stderr unless ``show_cursor``."""

    summary: bool = False
    show_cursor: bool = False
    echo: Callable[[str, bool], None] = field(default=lambda text, err: typer.echo(text, err=err))
    # Marking definitions seen so far: id -> banner text, for --summary lines.
    banners: dict[str, str] = field(default_factory=dict)

    def objects(self, objects: list[dict[str, Any]]) -> None:
        """Print one event's objects."""
        import orjson

        for obj in objects:
            if obj.get("type") == "marking-definition":
                self._remember(obj)
        for obj in objects:
            if not self.summary:
                self.echo(orjson.dumps(obj).decode(), False)
                continue
            refs = obj.get("object_marking_refs") or []
            banner = " + ".join(self.banners[ref] for ref in refs if ref in self.banners)
            if obj.get("type") == "marking-definition":
                banner = self.banners.get(str(obj.get("id")), "")
            line = f"{obj.get('type', '?')} {obj.get('id', '?')}"
            name = obj.get("name") if obj.get("name") != banner else None
            self.echo(
                line + (f" {name!r}" if isinstance(name, str) else "") + (f" [{banner}]" if banner else ""), False
            )

    def cursor(self, cursor: str) -> None:
        """Print the cursor after an event: what ``--last-event-id`` takes to resume after it."""
        self.echo(f"cursor {cursor}", not self.show_cursor)

    def note(self, text: str) -> None:
        """A message for the person at the terminal (stderr)."""
        self.echo(text, True)

    def _remember(self, definition: dict[str, Any]) -> None:
        if len(self.banners) >= 10_000:  # a bound, not a cache policy: definitions are few
            self.banners.clear()
        body = definition.get("definition")
        text: object = None
        for extension in (definition.get("extensions") or {}).values():
            if isinstance(extension, dict) and extension.get("banner"):
                text = extension["banner"]
        if text is None and isinstance(body, dict):
            text = body.get("statement") or (f"TLP:{str(body['tlp']).upper()}" if body.get("tlp") else None)
        text = text or definition.get("name")
        if isinstance(text, str) and text:
            self.banners[str(definition.get("id"))] = text


@dataclass
class Follower:
    """One follow: where, as whom, from which cursor; counts events and failed connections in a row."""

    client: httpx.Client
    events_url: str
    token: str
    output: Output
    cursor: str | None = None
    added_after: str | None = None
    max_events: int | None = None
    max_retries: int = 0
    received: int = 0
    failures: int = 0

    def connect_once(self) -> str | None:
        """Read events until the stream ends: the server's close reason, or None after ``max_events``.

        Raises Refused, Unavailable, Dropped or an httpx transport error.
        """
        from httpx_sse import connect_sse

        headers = {"Authorization": f"Bearer {self.token}", "Accept": EVENT_STREAM}
        params: dict[str, str] = {}
        if self.cursor is not None:
            headers["Last-Event-ID"] = self.cursor
        elif self.added_after is not None:
            params["added_after"] = self.added_after
        self.failures += 1  # until the server answers 200
        with connect_sse(self.client, "GET", self.events_url, headers=headers, params=params) as source:
            _check(source.response)
            self.failures = 0
            self.output.note(f"following {self.events_url}" + (f" after cursor {self.cursor}" if self.cursor else ""))
            for event in source.iter_sse():
                if event.event == "close":
                    reason = event.json().get("reason") if event.data else None
                    return str(reason or "no reason given")
                if event.event != "objects":
                    continue  # an event kind this client does not know: skip it, as SSE clients do
                self.output.objects(event.json().get("objects", []))
                if event.id:
                    self.cursor = event.id
                    self.output.cursor(event.id)
                self.received += 1
                if self.max_events is not None and self.received >= self.max_events:
                    return None
        raise Dropped("the server ended the stream without closing it")

    # tenacity's wait, stop and before_sleep: counted from the last answered connection, not from
    # the start of the command, so a stream that ran for hours starts again with a short wait.

    def wait(self, state: RetryCallState) -> float:
        """Exponential back-off with jitter; at least the server's Retry-After."""
        backoff = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2.0 ** max(0, self.failures - 1))
        backoff += random.uniform(0, backoff / 4)  # jitter: followers cut off together do not return together
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Unavailable) and error.retry_after:
            backoff = max(backoff, min(error.retry_after, 300.0))
        return backoff

    def stop(self, state: RetryCallState) -> bool:
        """Give up after ``max_retries`` failed connections in a row (0: never)."""
        return bool(self.max_retries) and self.failures >= self.max_retries

    def before_sleep(self, state: RetryCallState) -> None:
        """Say what happened and when the next try is."""
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        resume = f"after cursor {self.cursor}" if self.cursor else "from the start point"
        self.output.note(f"connection lost ({_describe(error)}); reconnecting {resume} in {wait:.1f} s")


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no error"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _check(response: httpx.Response) -> None:
    """Raise for an answer that is not an event stream: Refused or Unavailable, with the server's words."""
    if response.status_code == 200:
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        if kind != EVENT_STREAM:
            raise Refused(200, f"the answer is {kind or 'untyped'}, not an event stream: is the URL a Tearline server?")
        return
    response.read()
    message = response.reason_phrase
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("description") or body.get("detail") or body.get("title") or message)
    except ValueError:
        pass
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after", "")
        raise Unavailable(
            response.status_code,
            message,
            float(retry_after) if retry_after.isascii() and retry_after.isdigit() else None,
        )
    raise Refused(response.status_code, message)


def follow_stream(follower: Follower, sleep: Callable[[float], None] | None = None) -> str | None:
    """Follow until ``max_events`` (None) or the server's close (its reason), reconnecting on failures.

    Refused propagates at once; the last failure propagates when ``max_retries`` is reached.
    """
    import httpx
    from tenacity import Retrying, retry_if_exception_type

    retrying = Retrying(
        retry=retry_if_exception_type((httpx.TransportError, Unavailable, Dropped)),
        wait=follower.wait,
        stop=follower.stop,
        before_sleep=follower.before_sleep,
        reraise=True,
        sleep=sleep or time.sleep,
    )
    result: str | None = retrying(follower.connect_once)
    return result


def _token(value: str | None) -> str:
    """The bearer token: given, or ``env:NAME`` read from the environment."""
    if not value:
        fail("give a bearer token with --token: the token, or env:NAME to read it from a variable")
    if value.startswith("env:"):
        name = value[4:]
        value = os.environ.get(name, "")
        if not value.strip():
            fail(f"--token env:{name}: the variable {name} is not set or empty")
    token = value.strip()
    return token.split(None, 1)[1].strip() if token.lower().startswith("bearer ") else token


def _server(url: str | None, api_root: str | None) -> tuple[str, str]:
    """The server's base URL and API root: as given, else the configured instance's."""
    if url is None:
        from app.cli.common import load_settings

        settings = load_settings()
        # A listen address for every interface is not one to connect to: this machine's is.
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        return f"http://{host}:{settings.port}", api_root or settings.api_root
    if not url.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https://, got {url!r}")
    return url.rstrip("/"), api_root or "api1"


@stream_app.command("follow")
def follow(
    collection: Annotated[
        str | None, typer.Option(help="Collection id (default: the default collection).", show_default=False)
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Server base URL, e.g. https://tearline.example.org (default: the configured instance, "
            "http://TEARLINE_HOST:TEARLINE_PORT).",
            show_default=False,
        ),
    ] = None,
    api_root: Annotated[
        str | None, typer.Option(help="API root (default: api1, or the configured instance's).", show_default=False)
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token (partner or analyst), or env:NAME to read it from that variable "
            "(which keeps it out of the process list).",
            show_default=False,
        ),
    ] = None,
    added_after: Annotated[
        str | None,
        typer.Option(
            help="Start after this time (RFC 3339), e.g. the X-TAXII-Date-Added-Last of your last pull "
            "[default: from now].",
            show_default=False,
        ),
    ] = None,
    last_event_id: Annotated[
        str | None, typer.Option(help="Resume after this cursor (printed after each event).", show_default=False)
    ] = None,
    summary: Annotated[bool, typer.Option(help="One short line per object: type, id, name, banner.")] = False,
    show_cursor: Annotated[bool, typer.Option(help="Print cursors on stdout, after each event's objects.")] = False,
    max_events: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many events (default: follow until Ctrl-C).")
    ] = None,
    max_retries: Annotated[
        int, typer.Option(min=0, help="Failed connections in a row before giving up (0: never).")
    ] = 0,
    idle_timeout: Annotated[
        float,
        typer.Option(
            min=1, help="Reconnect when nothing arrives for this many seconds (the server sends keep-alives)."
        ),
    ] = 60.0,
) -> None:
    """Follow a collection's new objects as they are stored (Server-Sent Events), one JSON per line."""
    if added_after is not None and last_event_id is not None:
        fail("give --added-after or --last-event-id, not both")
    bearer = _token(token)
    base, root = _server(url, api_root)
    import httpx
    from tenacity import RetryError

    events_url = f"{base}/taxii2/{root}/collections/{collection or DEFAULT_COLLECTION_ID}/events/"
    output = Output(summary=summary, show_cursor=show_cursor)
    with httpx.Client(timeout=httpx.Timeout(10.0, read=idle_timeout)) as client:
        follower = Follower(
            client,
            events_url,
            bearer,
            output,
            cursor=last_event_id,
            added_after=added_after,
            max_events=max_events,
            max_retries=max_retries,
        )
        try:
            reason = follow_stream(follower)
        except KeyboardInterrupt:
            _resume_hint(output, follower)
            raise typer.Exit(INTERRUPTED) from None
        except Refused as exc:
            fail(f"the server refused the stream ({exc})", REFUSED)
        except ValueError as exc:  # an event whose data is not the JSON the format promises
            _resume_hint(output, follower)
            fail(f"the server sent an event this command cannot read: {exc}", UNUSABLE)
        except (httpx.HTTPError, Unavailable, Dropped, RetryError) as exc:
            _resume_hint(output, follower)
            fail(f"gave up after {follower.failures} failed connection(s): {_describe(exc)}", UNUSABLE)
    if follower.max_events is not None and follower.received >= follower.max_events:
        return
    output.note(f"the server closed the stream: {reason}")
    _resume_hint(output, follower)
    raise typer.Exit(CLOSED)


def _resume_hint(output: Output, follower: Follower) -> None:
    if follower.cursor:
        output.note(f"resume with: --last-event-id {follower.cursor}")
