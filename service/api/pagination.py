"""Opaque keyset cursors: the sort key of the last item on a page, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from service.api.problems import Problem


def encode_cursor(moment: datetime, item_id: int) -> str:
    """Cursor that resumes after the item sorted at (``moment``, ``item_id``)."""
    raw = json.dumps([moment.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Inverse of ``encode_cursor``. Raises ``Problem`` (400) for a cursor we did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, item_id = json.loads(raw)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not isinstance(item_id, int):
            raise ValueError("bad cursor fields")
        return parsed, item_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Problem(400, "invalid cursor: pass back the next_cursor of a previous page") from exc
