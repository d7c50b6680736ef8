"""What the ingest steps hand completed articles to, as the ingest layer sees it: the composition
root (``service.wiring.assemble``) gives the poller an ``Announcer`` (writes ``article.created`` in
the transaction that completes an article), a ``Linking`` step (links articles whose text is final
into stories, and then announces them itself), or neither; never both, so which component
announces ``article.created`` is decided in that one place. The ingest steps import neither the
webhooks nor the stories (layers above them): ``service.webhooks.outbox`` (the module) is an
``Announcer``, ``service.stories.linker.Linker`` a ``Linking``.

An article is *completed* when its text is final: its page extracted, given up (the feed's text
kept), or never to be fetched (an entry without a link, stored with the feed document).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from service.models import Article


class Announcer(Protocol):
    """Writes ``article.created`` webhook deliveries for completed articles, inside the caller's
    transaction (the one that completes them), never committing."""

    def may_announce(self, session: Session, article_ids: list[int]) -> bool:
        """Whether ``announce_articles`` could write any delivery for ``article_ids`` (some is
        complete and some subscription takes the event): synchronous, for a transaction run on the
        SQLite writer thread (``db.Writer``), which cannot announce and books elsewhere when True."""
        ...

    def announce_articles(self, session: Session, article_ids: list[int]) -> int:
        """Write the deliveries of the complete articles among ``article_ids`` (pending ones are
        skipped: announced when their page is done); returns how many were written. Synchronous
        (an async caller passes it to ``AsyncSession.run_sync``)."""
        ...


class Linking(Protocol):
    """The step after ingest: links completed articles into stories (with its own lease and
    runner), and announces them once linked."""

    def prefetch(self, article: Article) -> None:
        """``article``'s text just became final (committed): start its costly work ahead."""
        ...

    async def link_pending(self) -> int:
        """Link every completed article not linked yet, until none is left; returns how many got
        a story. Never raises for one bad article."""
        ...

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, tick: float) -> None:
        """Link articles as they complete until ``stop`` is set: woken by ``wake`` (set by the
        poller after each commit that completed articles), else every ``tick`` seconds."""
        ...
