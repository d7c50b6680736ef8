"""Module-level functions for worker-process tests (a spawned worker imports them by name)."""

from __future__ import annotations

import logging
import os
import threading

from service.ingest.pages.extractor import extract_page

HANG_MARKER = b"HANG-THE-EXTRACTOR"
CRASH_MARKER = b"CRASH-THE-WORKER"


def add(a: int, b: int) -> int:
    return a + b


def hang_forever() -> None:
    """Block for good (no sleep loop, no timeout): only the pool's time limit ends it."""
    threading.Event().wait()


def crash() -> None:
    """Kill the worker process the hard way, as a segfault in lxml would."""
    os.abort()


def exit_abruptly() -> None:
    os._exit(3)


def warn(message: str) -> None:
    logging.getLogger("service.stories.cache").warning(message)


def extract_or_misbehave(html: bytes, url: str | None, feed_content: str | None = None):
    """``extract_page``, except that a page containing ``HANG_MARKER`` hangs the worker and one
    containing ``CRASH_MARKER`` kills it."""
    if HANG_MARKER in html:
        hang_forever()
    if CRASH_MARKER in html:
        crash()
    return extract_page(html, url, feed_content)
