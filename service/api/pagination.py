"""Opaque keyset cursors: the query a page answered and the sort key of its last item,
base64url-encoded JSON.

Lists sorted newest first use ``[list, query, moment, id]``; search results sorted by relevance
use ``[list, query, rank, moment, id]`` (``encode_cursor(..., rank=…)``); lists sorted by id alone
``[list, query, id]`` (``encode_id_cursor``). ``list`` names the list that issued the cursor
(``articles``, ``stories``, ``deliveries``) and ``query`` is ``query_digest`` of the
filters it was issued for, so a cursor resumes only the query that issued it: another list's
cursor, or one we did not issue, is a 400; one of the same list under other filters (or another
``q``) is a 422 (a page of one query resuming at another's position would silently mix the two)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from service.api.problems import Problem


def query_digest(**filters: Any) -> str:
    """A short digest (11 characters) of a list's normalised ``filters`` (the values its query
    means: UTC times, codes and domains as matched, the parsed search), whatever their order; a
    filter that is None counts as absent. The page size is not a filter: it may change between pages."""
    given = sorted((name, str(value)) for name, value in filters.items() if value is not None)
    return _base64(hashlib.blake2b(json.dumps(given).encode(), digest_size=8).digest())


def _base64(raw: bytes) -> str:
    """``raw`` in base64url without padding (RFC 4648 §5), as cursors and digests travel in URLs."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_cursor(listing: str, query: str, moment: datetime, item_id: int, *, rank: float | None = None) -> str:
    """Cursor of the list ``listing`` under the filters of digest ``query`` that resumes after the
    item sorted at (``moment``, ``item_id``), or at (``rank``, ``moment``, ``item_id``) for
    relevance-ordered results (the float round-trips exactly)."""
    key = [listing, query, moment.isoformat(), item_id] if rank is None else [listing, query, rank, moment.isoformat(), item_id]
    return _base64(json.dumps(key).encode())


_INVALID = "invalid cursor: pass back the next_cursor of a previous page (of the same query)"
_OTHER_QUERY = ("this cursor was issued for another query (other filters or q): leave cursor out to start this query at "
                "its first page, or repeat the filters the cursor was issued with")


def _decode(cursor: str, listing: str, query: str) -> list:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, _INVALID) from exc
    if not isinstance(key, list) or len(key) < 2 or key[0] != listing or not isinstance(key[1], str):
        raise Problem(400, _INVALID)
    if key[1] != query:
        raise Problem(422, _OTHER_QUERY, errors=[{"location": ["query", "cursor"], "message": _OTHER_QUERY, "type": "cursor_query"}])
    return key[2:]


# Ids are 64-bit signed integers in both databases.
_MAX_ID = 2**63 - 1


def _moment_and_id(moment, item_id) -> tuple[datetime, int]:
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None or not isinstance(item_id, int) or not 0 <= item_id <= _MAX_ID:
        raise ValueError("bad cursor fields")
    return parsed.astimezone(UTC), item_id


def decode_cursor(listing: str, query: str, cursor: str) -> tuple[datetime, int]:
    """Inverse of ``encode_cursor`` without rank. Raises ``Problem``: 400 for a cursor we did not
    issue, one issued for a search, or one issued by another list than ``listing``; 422 for one
    issued under filters whose digest is not ``query``."""
    key = _decode(cursor, listing, query)
    try:
        moment, item_id = key
        return _moment_and_id(moment, item_id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Problem(400, _INVALID) from exc


def decode_ranked_cursor(listing: str, query: str, cursor: str) -> tuple[float, datetime, int]:
    """Inverse of ``encode_cursor`` with ``rank``: ``(rank, moment, id)``. Raises ``Problem`` as
    ``decode_cursor`` does (400 for a cursor issued for a list without search)."""
    key = _decode(cursor, listing, query)
    try:
        rank, moment, item_id = key
        if not isinstance(rank, int | float) or isinstance(rank, bool):
            raise ValueError("bad rank")
        return float(rank), *_moment_and_id(moment, item_id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Problem(400, _INVALID) from exc


def encode_id_cursor(listing: str, query: str, item_id: int) -> str:
    """Cursor of the list ``listing``, sorted by id alone, under the filters of digest ``query``,
    that resumes after the item ``item_id``."""
    return _base64(json.dumps([listing, query, item_id]).encode())


def decode_id_cursor(listing: str, query: str, cursor: str) -> int:
    """Inverse of ``encode_id_cursor``. Raises ``Problem`` as ``decode_cursor`` does."""
    key = _decode(cursor, listing, query)
    if len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool) or not 0 <= key[0] <= _MAX_ID:
        raise Problem(400, _INVALID)
    return key[0]


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
