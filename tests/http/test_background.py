"""BackgroundWorker: a step per notice, or one per burst of notices when it settles."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.http.background import BackgroundWorker


class _Steps:
    """Counts the worker's steps and remembers when each ran."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.ran = threading.Event()

    def __call__(self, _stop: threading.Event) -> None:
        self.times.append(time.monotonic())
        self.ran.set()


@contextmanager
def _running(steps: _Steps, **settling: float) -> Iterator[BackgroundWorker]:
    """A worker running ``steps`` (woken by notices only), stopped on the way out."""
    worker = BackgroundWorker("test-worker", steps, period_s=60, **settling)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def _notices(worker: BackgroundWorker, count: int, gap_s: float) -> float:
    """Send ``count`` notices ``gap_s`` apart; returns when the last was sent."""
    for _ in range(count):
        worker.notify()
        time.sleep(gap_s)
    return time.monotonic()


def test_without_settling_a_notice_runs_a_step_at_once() -> None:
    steps = _Steps()
    with _running(steps) as worker:
        sent = time.monotonic()
        worker.notify()
        assert steps.ran.wait(5)
        assert steps.times[0] - sent < 0.5


def test_a_burst_of_notices_runs_one_step_after_it_pauses() -> None:
    steps = _Steps()
    with _running(steps, settle_s=0.2, max_lag_s=30) as worker:
        last = _notices(worker, count=20, gap_s=0.02)  # 0.4 s of notices, each within the settle time
        assert steps.ran.wait(5)
        time.sleep(0.5)  # any further step would have run by now
        assert len(steps.times) == 1
        assert steps.times[0] >= last + 0.1  # not before the notices paused (less a margin for sleep)


def test_notices_that_never_pause_still_run_a_step_within_the_lag() -> None:
    steps = _Steps()
    with _running(steps, settle_s=0.2, max_lag_s=0.5) as worker:
        started = time.monotonic()
        _notices(worker, count=60, gap_s=0.03)  # 1.8 s of notices, never a pause of 0.2 s
        assert steps.times, "no step ran while the notices went on"
        assert steps.times[0] - started < 1.2  # the lag (0.5 s) plus scheduling slack


def test_stop_ends_a_settling_wait_at_once() -> None:
    steps = _Steps()
    worker = BackgroundWorker("test-stop", steps, period_s=60, settle_s=0.2, max_lag_s=60)
    worker.start()
    worker.notify()
    time.sleep(0.05)
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 1.0
    assert not steps.times  # stopped while settling: the step is not run on the way out
