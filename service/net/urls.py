"""URL canonicalisation and outlet keys, delegated to courlan (the URL library trafilatura uses)."""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import idna
from courlan import extract_domain, normalize_url

from service.errors import InputError

# Longest URL stored (characters, raw and canonical form): the width of the URL columns
# (``feeds.url``, ``articles.canonical_url``, ``articles.url_key``), and the limit the Sitemaps
# protocol sets (https://www.sitemaps.org/protocol.html: "less than 2,048 characters").
MAX_URL_LENGTH = 2048


class InvalidURL(InputError):
    """A URL Newsloom will not fetch: not absolute http(s), no host, or too long."""


def check_fetchable(url: str) -> str:
    """Return ``url`` stripped of surrounding blanks if it is an absolute http(s) URL with a host
    whose raw and canonical forms fit in ``MAX_URL_LENGTH`` characters.

    Raises ``InvalidURL`` otherwise (``file:``, ``ftp:``, relative paths, garbage, too long, a
    host such as ``0177.0.0.1`` that httpx refuses to request).
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise InvalidURL(f"not a valid URL ({exc}): {url[:200]!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidURL(f"not an absolute http(s) URL: {url[:200]!r}")
    if not valid_host(parts.hostname):
        raise InvalidURL(f"not a valid host name (an empty label, or one over 63 characters): {parts.hostname[:200]!r}")
    if not fits(url):
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters: {url[:200]!r}…")
    try:
        httpx.URL(url)  # the client's own parser: what it cannot request is refused here
    except httpx.InvalidURL as exc:  # e.g. "Invalid IPv4 address: '0177.0.0.1'"
        raise InvalidURL(f"not a valid URL ({exc}): {url[:200]!r}") from exc
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def valid_host(host: str) -> bool:
    """Whether ``host`` (a URL's host name, without brackets) is an IP address or a name the DNS
    can carry: IDNA-encodable, so no empty label and none over 63 octets (RFC 1035 section 2.3.4,
    RFC 5890). A trailing dot (a fully qualified name) is allowed. Memoised (1,024 hosts): a feed's
    links mostly share a host or two, and each is checked (``check_fetchable``)."""
    if _is_ip(host):
        return True
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def fits(url: str) -> bool:
    """Whether ``url`` and its canonical form (percent-encoding can lengthen it) are at most
    ``MAX_URL_LENGTH`` characters long."""
    return len(url) <= MAX_URL_LENGTH and len(canonicalize(url)) <= MAX_URL_LENGTH


_PASSWORD = re.compile(r"(?<=://)([^/?#@\s:]*):[^/?#@\s]*@")


def redact_password(text: str) -> str:
    """``text`` (a URL, or a message quoting URLs) with the password of every URL's userinfo
    (RFC 3986 §3.2.1, ``scheme://user:password@host``) shown as ``***``; a URL without a password
    is unchanged. For showing credentials-bearing feed and webhook URLs, and errors that quote them,
    to those who may not use them."""
    return _PASSWORD.sub(r"\1:***@", text)


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (RFC 3986 §3.2.1); unchanged when it has none or does not
    parse. A private feed's relative links resolve against its URL and would carry its credentials
    into article URLs (shown to every reader and sent in webhook events)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@functools.lru_cache(maxsize=1024)
def canonicalize(url: str) -> str:
    """The canonical form of an article or feed URL (memoised: a feed's parse asks for the form of
    each link three times, for its entry key, its length check and storage's link forms).

    Lower-cases scheme and host (not the ``user:password@`` credentials), drops default ports and
    tracking parameters (``utm_*``,
    ``fbclid``, ``gclid``, ``ref``, …) and sorts the query, as ``courlan.normalize_url`` does, then
    drops the fragment, AMP markers and the analytics parameters courlan does not know
    (``EXTRA_TRACKERS``: Webtrekk/Mapp ``wt_mc``, as heise's feeds carry, comScore ``ns_*``). Other query parameters stay: many sites name the article
    by one (``?story=5``, ``?articleid=77``, ``?seite=2``), so courlan's ``strict`` mode, which keeps
    only a short allow-list, would merge different articles. Input that courlan cannot parse is
    returned stripped but otherwise unchanged.
    """
    url = url.strip()
    try:
        normal = normalize_url(url, strict=False)
    except (ValueError, AttributeError):
        return url
    parts = urlsplit(normal)
    if parts.scheme in ("http", "https") and parts.netloc:
        path, query = _strip_amp_path(parts.path) or "/", _strip_trackers(_strip_amp_query(parts.query))
        netloc = parts.netloc
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        if userinfo:  # courlan lower-cases the whole netloc: keep the credentials as given
            netloc = f"{userinfo}@{netloc.rpartition('@')[2]}"
        normal = urlunsplit(parts._replace(netloc=netloc, path=path, query=query, fragment=""))
    return normal


_AMP_SEGMENT = re.compile(r"^/amp(?=/)|/amp/?$")
_AMP_PARAMS = {("amp", ""), ("amp", "1"), ("amp", "true"), ("outputtype", "amp"), ("output", "amp")}


def _strip_amp_path(path: str) -> str:
    """``/amp/world/x/`` and ``/world/x/amp/`` → ``/world/x/`` (AMP variants of one page)."""
    stripped = _AMP_SEGMENT.sub("", path)
    if stripped != path and path.endswith("/") and not stripped.endswith("/"):
        stripped += "/"
    return stripped


EXTRA_TRACKERS = re.compile(r"(?i)^(?:wt_|ns_)|^(?:wtmc|cmpid)$")
"""Query parameters of analytics suites that courlan's tracker list lacks: Webtrekk / Mapp
Intelligence (``wt_mc``, ``wt_zmc``; German publishers), comScore (``ns_campaign``, ``ns_mchannel``),
and campaign ids (``cmpid``)."""


def _strip_trackers(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not EXTRA_TRACKERS.search(k)]
    return query if len(kept) == len(pairs) else urlencode(kept)


def _strip_amp_query(query: str) -> str:
    if "amp" not in query.lower():
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if (k.lower(), v.lower()) not in _AMP_PARAMS]
    return query if len(kept) == len(pairs) else urlencode(kept)


def url_identity(url: str) -> str:
    """A URL's identity for deduplication: canonical form without the scheme (``//host/path?q``), so
    the http and https forms of one item are one item."""
    return _identity(canonicalize(url))


def fragment(url: str) -> str:
    """The fragment of ``url`` as written (after the first ``#``, RFC 3986 §3.5), "" when it has none.
    ``canonicalize`` drops it: for a page it names a place on the page, which is the same page;
    storage keeps it where it tells apart posts that share one page (``articles.store_entries``)."""
    return url.partition("#")[2].strip()


def anchored_identity(url: str) -> str:
    """``url_identity`` followed by ``#<fragment>`` when ``url`` has one: the identity of an entry's
    GUID or link (``entries.entry_key``), where ``page.html#a1`` and ``page.html#a2`` are two posts."""
    anchor = fragment(url)
    return f"{url_identity(url)}#{anchor}" if anchor else url_identity(url)


def _identity(canonical: str) -> str:
    scheme, sep, rest = canonical.partition("://")
    return f"//{rest}" if sep and scheme in ("http", "https") else canonical


def url_variants(url: str) -> list[str]:
    """The canonical forms of ``url`` treated as the same resource: http and https, with and
    without a trailing slash (never for the root path). The https form comes first."""
    return _variants(canonicalize(url))


def _variants(canonical: str) -> list[str]:
    parts = urlsplit(canonical)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [canonical]
    paths = [parts.path]
    if parts.path not in ("", "/"):
        paths.append(parts.path[:-1] if parts.path.endswith("/") else parts.path + "/")
    # ``urlunsplit`` of each (scheme, netloc, path, query, fragment), written out: with a netloc, a
    # path that is empty or starts with "/" (as every path here does) is joined as it is, and an
    # empty query or fragment is left out. Four ``_replace`` and ``urlunsplit`` calls cost more
    # than the rest of the link's forms (``link_forms``: every entry link of every parse).
    tail = (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return [f"{scheme}://{parts.netloc}{path}{tail}" for scheme in ("https", "http") for path in paths]


def link_forms(url: str) -> tuple[str, str, list[str]]:
    """``(canonicalize(url), dedup_key(url), url_variants(url))``, canonicalising once (the costly
    step; storage needs all three for every entry link)."""
    canonical = canonicalize(url)
    return canonical, _dedup(_identity(canonical)), _variants(canonical)


def outlet_domain(url: str) -> str | None:
    """The registrable domain that keys an outlet (``https://www.welt.de/x`` → ``welt.de``), or None.

    For an IP address or ``localhost`` the host itself is returned.
    """
    host = urlsplit(url).hostname
    if not host:
        return None
    return extract_domain(url, fast=True) or host


def outlet_named(name: str) -> str:
    """The outlet key (``outlet_domain``) of what a user names an outlet by: its domain in any case,
    with ``www.`` or a port, or one of its URLs (``WWW.Welt.de``, ``https://www.welt.de/x`` →
    ``welt.de``). Raises ``ValueError`` when no host name can be read from it (``a b``, ``[``,
    ``http://``, ``-``): a host is an IP address or a name of IDNA labels (``idna``, UTS #46)."""
    text = name.strip().lower()
    try:
        host = urlsplit(text if "://" in text else f"http://{text}").hostname
        if host and not _is_ip(host):
            idna.encode(host.rstrip("."), uts46=True)
    except (ValueError, idna.IDNAError):  # "[", a bad port, a label with a space or a leading hyphen
        host = None
    if not host:
        raise ValueError(f"{name!r} names no outlet: give its domain (welt.de) or a URL of the site")
    return outlet_domain(f"http://{host}") or host


def dedup_key(url: str) -> str:
    """The key that makes two links one article: ``url_identity`` with a trailing slash removed
    (except for the root path), so http/https, ``/a`` and ``/a/``, and AMP variants collide."""
    return _dedup(url_identity(url))


def _dedup(identity: str) -> str:
    parts = urlsplit(identity)
    if parts.path not in ("", "/") and parts.path.endswith("/"):
        identity = urlunsplit(parts._replace(path=parts.path.rstrip("/")))
    return identity
