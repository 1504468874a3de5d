"""Resident memory of this process while something runs: the peer bench's pulls (issue 22's memory goal).

The bench's server runs in a thread of the bench process, so what is sampled is server and client
together; the client keeps no page after parsing it, so growth in N is the server's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

STATUS = Path("/proc/self/status")
INTERVAL_S = 0.05


def rss_mib() -> float | None:
    """This process's resident set size in MiB (None where /proc is not available)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler:
    """Samples the RSS every 50 ms inside a ``with`` block: ``before_mib`` and ``peak_mib``."""

    def __init__(self) -> None:
        self.before_mib: float | None = None
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self.before_mib = self.peak_mib = rss_mib()
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._note(rss_mib())

    def figures(self) -> dict[str, float | None]:
        """Before and peak, rounded, for the results JSON."""
        return {
            "rss_before_mib": None if self.before_mib is None else round(self.before_mib, 1),
            "rss_peak_mib": None if self.peak_mib is None else round(self.peak_mib, 1),
        }

    def _sample(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self._note(rss_mib())

    def _note(self, value: float | None) -> None:
        if value is not None and (self.peak_mib is None or value > self.peak_mib):
            self.peak_mib = value
