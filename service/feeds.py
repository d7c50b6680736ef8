"""Subscribing to feeds: shared by the API (``POST /v1/feeds``) and the CLI (``newsloom feeds add``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

from service.config import Settings
from service.errors import InputError
from service.ingest.feeds.opml import OPMLFeed
from service.ingest.schedule import first_poll_offset
from service.models import Feed, utcnow
from service.net.ssrf import refused_rule
from service.net.urls import InvalidURL, canonicalize, check_fetchable
from service.storage import feeds

if TYPE_CHECKING:
    from service.ingest.feeds.entries import ParsedFeed
    from service.net.fetcher import FetchResult

T = TypeVar("T")


class FeedIntake(Protocol):
    """What subscribing needs of the feed step (``ingest.poller.Poller`` is one): its settings, a
    feed fetched with its limits and politeness, CPU work in its worker processes, a document
    parsed there, and the first document of a new feed ingested as its first poll."""

    @property
    def settings(self) -> Settings: ...

    async def fetch_feed(self, url: str) -> FetchResult:
        """GET a feed document. Raises ``FetchError`` (``BlockedURL`` for a refused address)."""
        ...

    async def offload(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker process; its exceptions propagate."""
        ...

    async def parse_feed(self, result: FetchResult) -> ParsedFeed:
        """Parse a fetched document. Raises ``FeedParseError``, or ``WorkerError`` (crash, time limit)."""
        ...

    async def ingest(self, feed: Feed, result: FetchResult, *, parsed: ParsedFeed) -> object:
        """Store ``parsed`` (fetched as ``result``) as ``feed``'s poll. Never raises for a bad document."""
        ...


async def find_feed(session: AsyncSession, url: str) -> Feed | None:
    """The feed subscribed under the canonical form of ``url``, if any."""
    return await feeds.by_url(session, canonicalize(url))


async def add_feed(
    session: AsyncSession, url: str, poll_interval: int, *, title: str | None = None, category: str | None = None,
    delay: float = 0.0,
) -> tuple[Feed, bool]:
    """Subscribe to the feed at ``url``, due for its first poll after ``delay`` seconds, and commit.

    Returns ``(feed, True)`` for a new subscription and ``(existing_feed, False)`` when the canonical
    form of ``url`` is already subscribed. Raises ``service.net.urls.InvalidURL`` for anything but
    an absolute http(s) URL.
    """
    canonical = canonicalize(check_fetchable(url))
    existing = await feeds.by_url(session, canonical)
    if existing is not None:
        return existing, False
    return await feeds.add(session, Feed(url=canonical, poll_interval=poll_interval, title=title, category=category,
                                         next_poll_at=utcnow() + timedelta(seconds=delay)))


class SubscribeError(InputError):
    """A URL that cannot be subscribed to; the message says why (SSRF rule, fetch failure, no feed)."""


async def subscribe(session: AsyncSession, intake: FeedIntake, url: str) -> tuple[Feed, bool]:
    """Subscribe to what the user gave: a feed URL, or a page that links to feeds (discovery).

    Checks the URL with the SSRF guard (``ssrf.check_url``), fetches it once, follows a page's
    ``<link rel="alternate">`` to its feed, subscribes, and ingests that document as the feed's
    first poll (so subscribing costs one GET of the feed); a document that does not parse as a
    feed (``FeedParseError``) is refused. A feed URL that redirects permanently (301/308) is
    subscribed at the redirect's target. Returns ``(feed, created)``; ``created`` is False when the
    feed was already subscribed, under the given URL or the one it moved to (nothing fetched again
    when the given URL itself is). Raises ``SubscribeError`` with a one-line reason.
    """
    from service.ingest.feeds.discovery import NoFeedFound, discover
    from service.ingest.feeds.entries import FeedParseError
    from service.ingest.workers import WorkerError
    from service.net.fetcher import BlockedURL, FetchError
    from service.net.ssrf import BlockedAddress, check_url

    settings = intake.settings

    async def refusal(candidate: str) -> str | None:
        try:
            await check_url(candidate, allow_private=settings.allow_private_networks)
        except BlockedAddress as exc:
            return exc.detail
        except OSError as exc:
            return f"cannot resolve the host of {candidate}: {exc}"
        return None

    try:
        url = check_fetchable(url)
    except ValueError as exc:
        raise SubscribeError(str(exc)) from exc
    refused = await refusal(url)
    if refused:
        raise SubscribeError(refused)
    existing = await find_feed(session, url)
    if existing is not None:
        return existing, False
    try:
        feed_url, result = await discover(url, intake.fetch_feed, intake.offload, refusal)
    except BlockedURL as exc:
        raise SubscribeError(f"{exc.reason} [rule: {exc.rule}]") from exc
    except FetchError as exc:
        raise SubscribeError(f"could not fetch {exc.url}: {exc.reason}") from exc
    except NoFeedFound as exc:
        raise SubscribeError(str(exc)) from exc
    try:  # parsed once here: a document no feed parser can read is refused, not subscribed to
        parsed = await intake.parse_feed(result)
    except FeedParseError as exc:
        raise SubscribeError(f"{feed_url} is not a feed: {exc}") from exc
    except WorkerError as exc:  # the parse crashed or ran out of time
        raise SubscribeError(f"{feed_url} could not be parsed: {exc}") from exc
    # A feed that moved permanently (301/308) is subscribed at its new address, as a poll would move it.
    feed_url = result.permanent_url or feed_url
    # Not due until the lease would expire: the poller loop must not poll it while we ingest.
    feed, created = await add_feed(session, feed_url, settings.poll_interval, delay=settings.lease_seconds)
    if created:
        await intake.ingest(feed, result, parsed=parsed)
        await feeds.reread(session, feed)
    return feed, created


@dataclass
class ImportOutcome:
    """What ``import_outlines`` did with one OPML outline: ``added`` or ``existing`` (with the
    ``feed``), or ``refused`` (with the ``reason``, feed None). ``credentials_updated``: an existing
    feed now uses the outline's ``user:password@`` (``new_credentials``)."""

    url: str
    status: Literal["added", "existing", "refused"]
    feed: Feed | None = None
    reason: str | None = None
    credentials_updated: bool = False


def new_credentials(subscribed: str, given: str) -> bool:
    """Whether the URL ``given`` for the feed subscribed as ``subscribed`` (the same feed: they
    differ at most by credentials) carries credentials to use instead: a password
    (``user:password@``, RFC 3986 §3.2.1) other than the subscription's and not the ``***`` an
    export to a ``read`` key shows (``urls.redact_password``). A URL without a password never
    removes the subscription's."""
    password = urlsplit(given).password
    if password is None or password == "***":
        return False
    theirs = urlsplit(subscribed)
    return (urlsplit(given).username, password) != (theirs.username, theirs.password)


def import_refusal(url: str, allow_private: bool) -> str | None:
    """Why an imported feed URL is refused without a request, or None: a URL that cannot be fetched
    (``urls.check_fetchable``: not http(s), no usable host or port, too long), or a literal address
    the SSRF guard refuses (``ssrf.refused_rule``; unless ``allow_private``). Host names are judged
    on their resolved address at every connection, not here."""
    try:
        check_fetchable(url)  # http(s) only, a host, a port, a length: what can be requested at all
    except InvalidURL as exc:
        return str(exc)
    if allow_private:
        return None
    try:
        rule = refused_rule(ip_address((urlsplit(url).hostname or "").strip("[]")))
    except ValueError:
        return None
    return f"address is {rule} (SSRF guard; NEWSLOOM_ALLOW_PRIVATE_NETWORKS=true allows it for local development)" if rule else None


async def import_outlines(session: AsyncSession, outlines: list[OPMLFeed], settings: Settings) -> list[ImportOutcome]:
    """Subscribe to every outline's feed, keeping titles and categories, committing each; feeds are
    not fetched now, their first polls spread over ``settings.poll_spread`` seconds. Refused URLs
    (``import_refusal``) are skipped, never raised: one outline per outcome, in document order.
    An outline of a feed already subscribed changes nothing of it (title, category) but its
    credentials: an outline whose URL carries another password (``new_credentials``: a password
    changed since the subscription) is the one the feed is fetched with from now on
    (``credentials_updated``), as the document is the user's latest word on how to reach it."""
    outcomes = []
    for outline in outlines:
        reason = import_refusal(outline.url, settings.allow_private_networks)
        if reason:
            outcomes.append(ImportOutcome(outline.url, "refused", reason=reason))
            continue
        feed, created = await add_feed(session, outline.url, settings.poll_interval, title=outline.title,
                                       category=outline.category, delay=first_poll_offset(settings))
        updated = not created and new_credentials(feed.url, outline.url)
        if updated:
            await feeds.set_url(session, feed, canonicalize(outline.url))
        outcomes.append(ImportOutcome(outline.url, "added" if created else "existing", feed=feed, credentials_updated=updated))
    return outcomes
