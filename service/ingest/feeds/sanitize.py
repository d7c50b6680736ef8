"""Feed HTML made safe to serve: one sanitiser for every HTML field of every feed format.

Feeds carry HTML (RSS ``description``/``content:encoded``, Atom ``summary``/``content``, JSON Feed
``content_html``/``summary``) that the API and webhooks hand on to clients, which may render it.
Every such field goes through ammonia's allow-list (``nh3``, a maintained Rust sanitiser): only
formatting tags and safe attributes stay; ``<script>``/``<style>`` lose their content, event
handlers (``onerror=``) and ``javascript:`` URLs go, links get ``rel="noopener noreferrer"``.
"""

from __future__ import annotations

import nh3


def clean_html(html: str | None) -> str | None:
    """``html`` with everything but ammonia's default allow-list removed; None for None or when
    nothing but whitespace is left."""
    if html is None:
        return None
    cleaned = nh3.clean(html).strip()
    return cleaned or None
