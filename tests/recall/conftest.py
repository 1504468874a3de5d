"""Fixtures of the recall tests: the feed tests' second Tearline (home GBR) and feed context, and a
served instance for event streams. (The push test that needs medallion lives in tests/feeds/: its
server is one per process.)"""

from __future__ import annotations

from tests.feeds.conftest import ctx, fast_settings, peer
from tests.live.conftest import instance, live_settings

__all__ = ["ctx", "fast_settings", "instance", "live_settings", "peer"]
