"""Logging of ``newsloom serve``: text or JSON lines, each with the id of the API request it
belongs to (``-`` outside requests).

The request id comes from the request's ``X-Request-ID`` header when it is a plausible id (1-128
characters of letters, digits and ``-_.:``), else a new UUID4 hex; the middleware in
``service.api.middleware`` sets it for the request's task and echoes it in the response.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def request_id_from(header: str | None) -> str:
    """The request id to use for a request whose ``X-Request-ID`` header is ``header``."""
    if header and _VALID_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's id, or ``-``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id``, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_configured: tuple[str | int, str] | None = None


def configure(level: str | int, fmt: str = "text") -> None:
    """Send every logger's records (uvicorn's included) to stderr as ``fmt`` (``text`` or ``json``)
    lines at ``level``; replaces earlier handlers of the root logger."""
    global _configured
    _configured = (level, fmt)
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too much at INFO


def configured() -> tuple[str | int, str] | None:
    """``(level, fmt)`` of this process's last ``configure``, or None before one: what a worker
    process it starts passes to ``configure`` to log the same way (``ingest.workers``)."""
    return _configured
