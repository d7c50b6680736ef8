"""URL canonicalisation and outlet keys, delegated to courlan (the URL library trafilatura uses)."""

from __future__ import annotations

from urllib.parse import urlsplit

from courlan import extract_domain, normalize_url


class InvalidURL(ValueError):
    """A URL Newsloom will not fetch: not absolute http(s), or no host."""


def check_fetchable(url: str) -> str:
    """Return ``url`` stripped of surrounding blanks if it is an absolute http(s) URL with a host.

    Raises ``InvalidURL`` otherwise (``file:``, ``ftp:``, relative paths, garbage).
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidURL(f"not an absolute http(s) URL: {url!r}")
    return url


def canonicalize(url: str) -> str:
    """The canonical form of an article or feed URL.

    Lower-cases scheme and host, drops default ports, fragments and tracking parameters (``utm_*``,
    ``fbclid``, …) and sorts the query, as ``courlan.normalize_url(strict=True)`` does. Input that
    courlan cannot parse is returned stripped but otherwise unchanged.
    """
    url = url.strip()
    try:
        return normalize_url(url, strict=True)
    except (ValueError, AttributeError):
        return url


def outlet_domain(url: str) -> str | None:
    """The registrable domain that keys an outlet (``https://www.welt.de/x`` → ``welt.de``), or None.

    For an IP address or ``localhost`` the host itself is returned.
    """
    host = urlsplit(url).hostname
    if not host:
        return None
    return extract_domain(url, fast=True) or host
