"""Opaque keyset cursors: the sort key of the last item on a page, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from service.api.problems import Problem


def encode_cursor(moment: datetime, item_id: int) -> str:
    """Cursor that resumes after the item sorted at (``moment``, ``item_id``)."""
    raw = json.dumps([moment.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Ids are 64-bit signed integers in both databases.
_MAX_ID = 2**63 - 1


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Inverse of ``encode_cursor``: ``(moment in UTC, id)``. Raises ``Problem`` (400) for a cursor
    we did not issue (undecodable, wrong fields, an id or a time out of range)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, item_id = json.loads(raw)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not isinstance(item_id, int) or not 0 <= item_id <= _MAX_ID:
            raise ValueError("bad cursor fields")
        return parsed.astimezone(UTC), item_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise Problem(400, "invalid cursor: pass back the next_cursor of a previous page") from exc


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
