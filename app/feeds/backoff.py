"""Back-off between tries of a background feed task, from the same settings and tenacity strategy as
the feed client's request retries (:func:`app.feeds.client.retrying`).

Background workers cannot block on a retry loop (one slow partner would hold up every other feed),
so they ask how long to wait before try ``attempt + 1`` and come back then.
"""

from __future__ import annotations

from tenacity import RetryCallState, Retrying, wait_exponential

from app.config.settings import Settings


def backoff_s(settings: Settings, attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th failed try (1, 2, 4, ... times ``feed_retry_initial_s``, at
    most ``feed_retry_max_s``)."""
    wait = wait_exponential(multiplier=settings.feed_retry_initial_s, max=settings.feed_retry_max_s)
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = max(attempt, 1)
    return float(wait(state))
