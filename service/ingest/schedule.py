"""When to poll a feed next: after a success, after a failure, and the first time.

After a success the interval is adapted to how often the feed really publishes (half the mean gap
between its recent entries, the time since the newest counting as one gap), raised to what the
publisher asks (``Cache-Control: max-age``, RFC 9111 §5.2.2.1; RSS 2.0 ``<ttl>``; RSS 1.0
syndication module ``sy:updatePeriod``/``sy:updateFrequency``), and clamped to the settings' floor
and ceiling. After a failure it backs off exponentially with "equal jitter" (half fixed, half
random), honouring ``Retry-After`` (RFC 9110 §10.2.3) when the server sends one. All values are
seconds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from datetime import datetime

from service.config import Settings

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.I)
# Entries used to estimate the publishing rate.
RECENT_ENTRIES = 10


def cache_max_age(cache_control: str | None) -> int | None:
    """``max-age`` seconds from a Cache-Control header, or None (``no-cache``/absent)."""
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def clamp(settings: Settings, seconds: float) -> int:
    """``seconds`` within ``[poll_min_interval, poll_max_interval]``."""
    return int(min(max(seconds, settings.poll_min_interval), settings.poll_max_interval))


def adaptive_interval(settings: Settings, dates: Iterable[datetime | None], now: datetime) -> int | None:
    """Half the mean gap between the ``RECENT_ENTRIES`` newest entry dates and now, or None with
    fewer than two dates. A feed that publishes hourly is polled about every 30 minutes; one whose
    newest entry is a month old slows down towards the ceiling."""
    known = sorted((d for d in dates if d is not None and d <= now), reverse=True)[:RECENT_ENTRIES]
    if len(known) < 2:
        return None
    span = (now - known[-1]).total_seconds()
    return int(span / len(known) / 2)


def next_interval(
    settings: Settings, *, entry_dates: Iterable[datetime | None], now: datetime,
    max_age: int | None = None, ttl: int | None = None, current: int | None = None,
) -> int:
    """The interval (seconds) until the next poll after a successful one.

    ``max_age`` and ``ttl`` are the publisher's minimum; the adaptive estimate (else ``current``,
    else the default ``poll_interval``) is raised to it; the result is clamped to floor/ceiling."""
    estimate = adaptive_interval(settings, entry_dates, now)
    if estimate is None:
        estimate = current or settings.poll_interval
    hint = max(max_age or 0, ttl or 0)
    return clamp(settings, max(estimate, hint))


def failure_delay(settings: Settings, failures: int, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``failures``-th failure in a row.

    With ``retry_after`` the server's wish is honoured (up to ``max_retry_after``); otherwise
    ``poll_min_interval × 2^(failures-1)``, capped at ``poll_max_interval``, with equal jitter
    (between half and all of it), so retries never stop but never synchronise either.
    """
    if retry_after is not None:
        return float(min(max(retry_after, 1.0), settings.max_retry_after))
    base = min(settings.poll_min_interval * 2 ** max(0, min(failures, 32) - 1), settings.poll_max_interval)
    return base / 2 + random.uniform(0, base / 2)


def first_poll_offset(settings: Settings) -> float:
    """A random delay (seconds, below ``poll_spread``) that spreads feeds scheduled together."""
    return random.uniform(0, settings.poll_spread)
