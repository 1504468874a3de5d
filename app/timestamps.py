"""STIX/TAXII timestamps as integers of microseconds since the Unix epoch.

Accepted at any sub-second precision (extra digits are truncated, which keeps
``>`` comparisons exact at microsecond resolution); emitted as
``YYYY-MM-DDTHH:MM:SS.ssssssZ``.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime, timezone

# ASCII digits only: a bare \d also matches other scripts' digits (full-width "２０２０"), which int()
# reads but STIX and TAXII timestamps do not allow.
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$", re.ASCII)


def parse_us(text: str) -> int:
    """Parse an RFC 3339 UTC timestamp ending in ``Z``; raise ValueError when it is not one."""
    # fullmatch: with match, "$" also accepts a trailing newline.
    match = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a UTC timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z): {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"not a valid date and time: {text!r}") from exc
    return calendar.timegm(moment.timetuple()) * 1_000_000 + int(fraction)


def format_us(micros: int) -> str:
    """Format microseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.ssssssZ``."""
    seconds, fraction = divmod(micros, 1_000_000)
    moment = time.gmtime(seconds)
    # Not strftime("%Y"): glibc does not zero-pad years before 1000 ("500-01-01...").
    return (f"{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}"
            f"T{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d}.{fraction:06d}Z")


def now_us() -> int:
    """The server's current time in microseconds."""
    return time.time_ns() // 1000
