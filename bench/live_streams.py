"""The live benchmark's partners: S event streams held open and read by a child process.

Part of ``bench/live.py`` (the entry point). The bench process serves the app (uvicorn in a thread)
and POSTs; the streams are read here, in a separate process, one asyncio loop for all of them (httpx
and httpx-sse). A partner's client is not the server's: read by threads of the bench process, 50
streams parsing their events would hold the interpreter lock the server needs to send the next one,
and the figure would include the bench's own contention.

The parent writes one JSON line to the child's stdin, ``{"base_url", "path", "tokens": [...]}``; the
child opens one stream per token at once and writes one JSON line per happening to stdout:

- ``{"kind": "open", "stream": i, "status": 200, "at": t}`` when the response has started;
- ``{"kind": "keepalive", "stream": i, "at": t}`` for a stream's first keep-alive comment only;
- ``{"kind": "event", "stream": i, "at": t, "ids": [...], "bytes": n}`` for each ``objects`` event;
- ``{"kind": "other", ...}`` for any other event (``close``), ``{"kind": "end", ...}`` when one ends.

``at`` is ``time.perf_counter()`` taken when the event has been received whole, before parsing it.
On Linux that clock is ``CLOCK_MONOTONIC``, one clock for every process of the machine, so the
parent subtracts its own times from it (:func:`check_shared_clock`). The child stops when its stdin
closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from httpx_sse import aconnect_sse

SHARED_CLOCK = "clock_gettime(CLOCK_MONOTONIC)"


def check_shared_clock() -> None:
    """Refuse to run where perf_counter is not one clock for every process (times would not compare)."""
    implementation = time.get_clock_info("perf_counter").implementation
    if implementation != SHARED_CLOCK:
        raise SystemExit(f"bench/live.py needs perf_counter on {SHARED_CLOCK} (Linux); here: {implementation}")


# --- the child ---------------------------------------------------------------------------------


def _emit(message: dict[str, Any]) -> None:
    # One write per line, flushed at once: the parent timestamps nothing, but it must not wait.
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


async def _follow(client: httpx.AsyncClient, index: int, path: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    try:
        async with aconnect_sse(client, "GET", path, headers=headers) as source:
            status = source.response.status_code
            _emit({"kind": "open", "stream": index, "status": status, "at": time.perf_counter()})
            if status != 200:
                body = (await source.response.aread()).decode(errors="replace")
                _emit({"kind": "end", "stream": index, "at": time.perf_counter(), "error": body[:500]})
                return
            kept_alive = False
            async for sse in source.aiter_sse():
                at = time.perf_counter()
                if sse.event == "objects":
                    objects = orjson.loads(sse.data).get("objects", [])
                    ids = [o["id"] for o in objects]
                    _emit({"kind": "event", "stream": index, "at": at, "ids": ids, "bytes": len(sse.data)})
                elif sse.event == "message" and not sse.data:
                    # A keep-alive comment (httpx-sse yields the blank line after it): only the first
                    # tells anything (the stream is waiting); the rest would be noise on the pipe.
                    if not kept_alive:
                        _emit({"kind": "keepalive", "stream": index, "at": at})
                        kept_alive = True
                else:
                    _emit({"kind": "other", "stream": index, "at": at, "event": sse.event, "data": sse.data[:500]})
        _emit({"kind": "end", "stream": index, "at": time.perf_counter(), "error": "the server ended the stream"})
    except httpx.HTTPError as exc:
        _emit({"kind": "end", "stream": index, "at": time.perf_counter(), "error": f"{type(exc).__name__}: {exc}"})


async def _main() -> None:
    plan = orjson.loads(sys.stdin.readline())
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    # No read timeout: an idle stream sends a keep-alive only every live_keepalive_seconds (15 s).
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(base_url=plan["base_url"], limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(_follow(client, i, plan["path"], token)) for i, token in enumerate(plan["tokens"])]
        # The parent's lifeline: its end (stdin at EOF) is the signal to close every stream.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- the parent's side -------------------------------------------------------------------------


class StreamReaders:
    """The child process holding the streams; :meth:`get` hands on its messages as dicts, in order."""

    def __init__(self, base_url: str, path: str, tokens: list[str]) -> None:
        self.plan = {"base_url": base_url, "path": path, "tokens": tokens}
        self.count = len(tokens)
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> StreamReaders:
        check_shared_clock()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(self.plan).decode() + "\n")
        self.process.stdin.flush()
        self.thread = threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True)
        self.thread.start()
        return self

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.messages.put(orjson.loads(line))

    def get(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None if none came within ``timeout`` seconds."""
        try:
            return self.messages.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def wait_open(self, timeout: float) -> tuple[dict[int, float], list[dict[str, Any]], list[dict[str, Any]]]:
        """Wait until every stream has answered: open times by stream, the refusals, and other messages.

        A refused stream answers when the server gives up on it (a request waits up to 30 s for a
        database connection), so ``timeout`` must be longer. Raises SystemExit if some never answer.
        """
        opened: dict[int, float] = {}
        refused: dict[int, dict[str, Any]] = {}
        others: list[dict[str, Any]] = []
        deadline = time.perf_counter() + timeout
        while len(opened) + len(refused) < self.count:
            message = self.get(deadline - time.perf_counter())
            if message is None:
                missing = self.count - len(opened) - len(refused)
                raise SystemExit(f"{missing} of {self.count} streams did not answer in {timeout:.0f} s")
            index = message["stream"]
            if message["kind"] == "open" and message["status"] == 200:
                opened[index] = message["at"]
            elif message["kind"] == "open":
                refused[index] = message
            elif message["kind"] == "end" and index in refused:
                refused[index]["error"] = message.get("error")  # the refusal's body, after its status
            elif message["kind"] == "end" and index not in opened:
                refused[index] = message  # no answer at all (the connection failed)
            else:
                others.append(message)
        # A refusal's body follows its status: give the last ones a moment to arrive.
        late = time.perf_counter() + 2
        while any("error" not in r for r in refused.values()) and (message := self.get(late - time.perf_counter())):
            if message["kind"] == "end" and message["stream"] in refused:
                refused[message["stream"]]["error"] = message.get("error")
            else:
                others.append(message)
        return opened, [refused[i] for i in sorted(refused)], others

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.thread is not None:
            self.thread.join(timeout=5)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
