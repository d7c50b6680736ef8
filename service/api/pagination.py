"""Opaque keyset cursors: the sort key of the last item on a page, base64url-encoded JSON.

Lists sorted newest first use ``[list, moment, id]``; search results sorted by relevance use
``[list, rank, moment, id]`` (``encode_cursor(..., rank=…)``); ``list`` names the list that issued
the cursor (``articles``, ``stories``). Each kind is refused where another is expected: a stories
cursor passed to ``/v1/articles`` is a 400, not a page of articles resuming at a story's time."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from service.api.problems import Problem


def encode_cursor(listing: str, moment: datetime, item_id: int, *, rank: float | None = None) -> str:
    """Cursor of the list ``listing`` that resumes after the item sorted at (``moment``,
    ``item_id``), or at (``rank``, ``moment``, ``item_id``) for relevance-ordered results (the
    float round-trips exactly)."""
    key = [listing, moment.isoformat(), item_id] if rank is None else [listing, rank, moment.isoformat(), item_id]
    raw = json.dumps(key).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, listing: str) -> list:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    key = json.loads(raw)
    if not isinstance(key, list) or not key or key[0] != listing:
        raise ValueError("bad cursor, or one of another list")
    return key[1:]


# Ids are 64-bit signed integers in both databases.
_MAX_ID = 2**63 - 1


def _moment_and_id(moment, item_id) -> tuple[datetime, int]:
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None or not isinstance(item_id, int) or not 0 <= item_id <= _MAX_ID:
        raise ValueError("bad cursor fields")
    return parsed.astimezone(UTC), item_id


_INVALID = "invalid cursor: pass back the next_cursor of a previous page (of the same query)"


def decode_cursor(listing: str, cursor: str) -> tuple[datetime, int]:
    """Inverse of ``encode_cursor`` without rank. Raises ``Problem`` (400) for a cursor we did not
    issue, one issued for a search, or one issued by another list than ``listing``."""
    try:
        moment, item_id = _decode(cursor, listing)
        return _moment_and_id(moment, item_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise Problem(400, _INVALID) from exc


def decode_ranked_cursor(listing: str, cursor: str) -> tuple[float, datetime, int]:
    """Inverse of ``encode_cursor`` with ``rank``: ``(rank, moment, id)``. Raises ``Problem`` (400)
    for a cursor we did not issue, one issued for a list without search, or by another list."""
    try:
        rank, moment, item_id = _decode(cursor, listing)
        if not isinstance(rank, int | float) or isinstance(rank, bool):
            raise ValueError("bad rank")
        return float(rank), *_moment_and_id(moment, item_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise Problem(400, _INVALID) from exc


def utc_filter(name: str, value: datetime | None) -> datetime | None:
    """A ``since``/``until`` query value as UTC. Raises ``Problem`` (422) when it has no time zone
    or falls outside the representable years 1–9999 once converted to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise Problem(422, f"{name} needs a time zone (for example 2024-05-01T00:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise Problem(422, f"{name} is out of range once converted to UTC") from exc
