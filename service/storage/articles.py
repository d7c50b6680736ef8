"""Articles: storing a feed document's entries once (set-based), the outlet of a URL, claiming pages
due for extraction, and booking each extraction's outcome; the read side of the API (lists with
keyset pagination and search, one article, citations, outlet domains)."""

from __future__ import annotations

import functools
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import dialect_insert, dialect_name
from service.ingest.feeds.entries import ParsedEntry, ParsedFeed, language_code, repeated_key
from service.ingest.pages.extracted import ExtractedArticle, content_hash
from service.ingest.text import clip_title, word_count
from service.models import Article, Citation, Entry, ExtractionStatus, Outlet, Story, table_of, utcnow
from service.net.hosts import host_key
from service.net.urls import MAX_URL_LENGTH, canonicalize, fits, fragment, link_forms, outlet_domain
from service.search import PG_CONFIGS, PG_DEFAULT_CONFIG, SearchQuery
from service.storage import leases, sql
from service.storage.search import article_match
from service.storage.sql import in_bound, insert_ignore


class FeedKeys(Protocol):
    """The fields of a feed that storing its entries reads: a ``Feed``, or a row of those columns."""

    @property
    def id(self) -> int: ...

    @property
    def url(self) -> str: ...

    @property
    def content_hash(self) -> str | None:
        """None until a document of the feed was parsed: its first one's articles are backlog."""
        ...


def outlet_for(session: Session, url: str | None) -> int | None:
    """The id of the outlet owning ``url``'s registrable domain, created on first sight."""
    domain = outlet_domain(url) if url else None
    if not domain:
        return None
    outlet = _storing_statements(dialect_name(session)).outlet
    found = session.scalars(outlet, {"domain": domain}).first()
    if found is None:  # first sight; another transaction may insert it meanwhile
        insert_ignore(session, Outlet, {"domain": domain, "created_at": utcnow()}, ["domain"])
        found = session.scalars(outlet, {"domain": domain}).one()
    return found


def page_is_due(now: datetime | sa.BindParameter) -> list[sa.ColumnElement[bool]]:
    """The conditions of an article whose page is due for fetching and extraction at ``now`` (UTC,
    or a bound parameter): ``pending``, and its next fetch time (first fetch or retry) has passed."""
    return [col(Article.extraction_status) == ExtractionStatus.pending, col(Article.next_fetch_at) <= now]


def _clamp(moment: datetime | None, now: datetime) -> datetime | None:
    return min(moment, now) if moment else None


def store_entries(session: Session, feed: FeedKeys, parsed: ParsedFeed, outlet_id: int | None = None) -> list[int]:
    """Store the entries of ``parsed`` not seen before in ``feed``; return the new articles' ids.
    ``outlet_id``: the outlet of the document's site (``outlet_for(parsed.site_url or feed.url)``),
    looked up when not given.

    Identity (``entries.entry_key``): the GUID, else the link, else title and date. An entry already
    stored for this feed updates its article when its title or summary was edited (only from the
    article's own feed) and upgrades an ``http`` URL to ``https``. An entry with an unseen key whose
    link is the article of an entry of this feed that is no longer in the document is the same
    item with a changed GUID: that entry is re-keyed, not duplicated. An entry whose link
    (http or https, with or without trailing slash, AMP variants removed) is an article already
    stored from another feed, or new earlier in the same document, is attached to that article.
    Every new article starts with the feed's own text (``text_source`` = ``feed``); those with a
    link wait for their page (``pending``), those without one keep it (``skipped``). Articles of a
    feed's first parsed document are its ``backlog``. Does not commit.

    *A page shared by several entries of one document* (``_shared_pages``): entries of one
    document whose links are one page (the same dedup key) and that are distinct entries
    (distinct keys: distinct GUIDs, or links differing by fragment) are distinct articles — both
    are in the document at once, so neither can be an edited copy of the other. A weblog's day
    page with one anchor per post (Scripting News: ``day.html#a1``, ``day.html#a2``) and a linked
    list whose posts link one external article (Daring Fireball: a post and a sponsor message
    both link the sponsor's site) are the two shapes. Such an entry's article is keyed by its
    anchor when its fragment is its own in the document (``url_key`` and ``canonical_url`` are the
    page's with ``#fragment``: other feeds listing that anchor meet it), else by its entry key
    (``url_key`` = the page's key and the entry key, ``canonical_url`` null: no URL names it). Its
    text is the entry's own from the feed; the shared page is *not fetched* (``skipped``, the
    reason in ``extraction_error``): it holds every post of the day, or an article that is none
    of the posts, so its text is no one entry's, and one fetch that could only be thrown away is
    not made. Two spellings of one page in one document (http and https, with and without a
    trailing slash, AMP, BL-18) are one article listed twice, as before. Across polls the rules
    above hold: an unseen entry whose article key is stored is that article (re-keyed when this
    feed's entry of it left the document); an unseen entry of a shared page whose key is not
    stored takes over this feed's entry of that page that left the document only when their
    title and summary are the same (the item re-published under a new GUID), else it is a new
    article — never the page's article while that article's entry is still listed, nor the
    article of a post that merely scrolled out of the document (a live blog's oldest update, a
    status feed whose items all link one page) when a new post arrives.
    An entry alone on its page keeps the rules above (its page is fetched), except that a link
    with a fragment first looks for an article stored under that anchor by another feed.

    *Two posts under one key* (``_distinct_entries``): entries of one document with the same key
    but another title, text or date are distinct posts, each keyed ``entries.repeated_key``; once
    the other has left the document, the one left keeps the key it was stored under
    (``_known_entries``).

    Set-based: whatever the number of entries (up to ``max_feed_entries``), a fixed number of
    statements — the outlet, the feed's known keys with their articles (the entries' keys and their
    ``repeated_key`` forms in one list), the articles stored under the unseen links, this feed's
    entries of those articles (and, when unseen entries share a page, this feed's entries of those
    pages no longer listed), one INSERT of the new articles (and one look-up when another
    transaction stored one of them meanwhile), one INSERT of the new entries, one executemany
    UPDATE of the edited articles and one of the re-keyed entries.
    """
    now = utcnow()
    if outlet_id is None:
        outlet_id = outlet_for(session, parsed.site_url or feed.url)
    entries = _distinct_entries(parsed.entries)
    if not entries:
        return []
    entries, known = _known_entries(session, feed.id, entries)
    keys = [entry.key for entry in entries]
    links = _shared_pages(entries, {entry.key: _Link.of(entry.link, entry.link_forms) for entry in entries if entry.link})
    stored = _StoredArticles(known)
    unseen = [entry for entry in entries if entry.key not in stored.by_entry_key]
    stored.load_links(session, [links[entry.key] for entry in unseen if entry.key in links])
    moved = _entries_not_in(session, feed.id, stored.linked_ids(), keys)
    pages = sorted({links[e.key].page for e in unseen if e.key in links and links[e.key].shared_by and
                    stored.for_link(links[e.key]) is None})
    left = _page_entries_not_in(session, feed.id, pages, keys, stored)
    taken: set[int] = set()  # entries re-keyed already: one entry takes one new key

    rekeyed: list[dict] = []
    new_keys: set[str] = set()  # dedup keys of the new articles: a later entry with the same link attaches
    new_entries: list[tuple[ParsedEntry, int | None]] = []  # article id; None: a new article, by link
    new_articles: list[dict] = []  # rows of ``articles``
    for entry in unseen:
        link = links.get(entry.key)
        found = stored.for_link(link) if link else None
        previous = None
        if found is not None:  # the GUID changed, the link did not (BL-13): same item
            previous = _take(taken, [(entry_id, found) for entry_id in moved.get(found.id, ())])
        elif link is not None and link.shared_by:  # a shared page's entry re-published under a new GUID
            previous = _take(taken, [(entry_id, article) for entry_id, article in left.get(link.page, ())
                                     if (article.title, article.summary) == (entry.title, entry.summary_html)])
        if previous is not None:
            entry_id, article = previous
            rekeyed.append({"entry_id": entry_id, "new_key": entry.key, "new_guid": entry.guid})
            stored.edit(article, feed, entry, link, now)
            continue
        if found is not None:
            stored.prefer_https(found, link)
            stored.adopt(found, feed)
        elif link is None or link.key not in new_keys:
            new_articles.append(_new_article(entry, link, feed, outlet_id, now))
            if link is not None:
                new_keys.add(link.key)
        new_entries.append((entry, found.id if found else None))
    for entry in entries:
        if entry.key in stored.by_entry_key:
            stored.edit(stored.by_entry_key[entry.key], feed, entry, links.get(entry.key), now)

    created = _insert_articles(session, new_articles)
    new_ids = [article["id"] for article in new_articles if article["id"] in created]
    # An entry's copy of its article's sort_at (migration 0010): given for the articles made here;
    # the database's trigger looks it up for the others.
    sort_at = {article["id"]: article["sort_at"] for article in new_articles if article["id"] in created}
    by_url_key = {article["url_key"]: article["id"] for article in new_articles if article["url_key"]}
    unlinked = iter(article["id"] for article in new_articles if article["url_key"] is None)  # one each, in order
    rows = []
    for entry, article_id in new_entries:
        link = links.get(entry.key)
        if article_id is None:  # its article is new: the one made for its link, else its own
            article_id = by_url_key[link.key] if link else next(unlinked)
        rows.append({"feed_id": feed.id, "entry_key": entry.key, "guid": entry.guid, "link": link.page if link else None,
                     "article_id": article_id, "first_seen_at": now, "sort_at": sort_at.get(article_id)})
    if rows:
        session.execute(_inserts(dialect_insert(session))[1], rows)  # one multi-row INSERT, as for the articles
    stored.write_edits(session)
    if rekeyed:
        entries_table = table_of(Entry)
        session.execute(
            sa.update(entries_table).where(entries_table.c.id == sa.bindparam("entry_id"))
            .values(entry_key=sa.bindparam("new_key"), guid=sa.bindparam("new_guid")),
            rekeyed,
        )
    return new_ids


def _content(entry: ParsedEntry) -> tuple:
    return entry.title, entry.text, entry.published_at


def _distinct_entries(parsed: list[ParsedEntry]) -> list[ParsedEntry]:
    """The entries of a document, each item once. The same key twice with the same title, text and
    date is one item listed twice: the first counts. The same key on entries that differ (two
    posts under one GUID and link, Scripting News) are distinct items: each is keyed
    ``entries.repeated_key`` (its date, else its text's hash), so none is lost."""
    contents: dict[str, set[tuple]] = {}
    for entry in parsed:
        contents.setdefault(entry.key, set()).add(_content(entry))
    out: list[ParsedEntry] = []
    seen: set[str] = set()
    for entry in parsed:
        if len(contents[entry.key]) > 1:
            entry = replace(entry, key=repeated_key(entry.key, entry.published_at, entry.text))
        if entry.key not in seen:
            seen.add(entry.key)
            out.append(entry)
    return out


def _take(taken: set[int], candidates: Iterable[tuple[int, _ArticleState]]) -> tuple[int, _ArticleState] | None:
    """The first of ``candidates`` (entry id, its article) whose entry is not in ``taken``, added to it."""
    for entry_id, article in candidates:
        if entry_id not in taken:
            taken.add(entry_id)
            return entry_id, article
    return None


@dataclass(frozen=True)
class _Link:
    """An entry link in the forms storage compares: the article's canonical URL, its dedup key and
    canonical variants, and the page the link is on (``page``: its canonical form, stored as the
    entry's ``link``). For an entry alone on its page the article is the page; for one of several
    entries sharing a page (``shared_by`` > 0, ``_shared_pages``) it is the entry's own."""

    url: str
    canonical: str | None
    key: str
    variants: tuple[str, ...]
    page: str = ""
    anchor: str | None = None
    """The dedup key with the link's fragment, when it has one: where another feed stored that anchor."""
    shared_by: int = 0
    """How many entries of the document share the page (0: the link's article is the page)."""

    @classmethod
    def of(cls, url: str, forms: tuple[str, str, tuple[str, ...]] | None = None) -> _Link:
        """The forms of ``url``: ``forms`` when the parse computed them (``ParsedEntry.link_forms``),
        else ``urls.link_forms``."""
        canonical, key, variants = forms if forms is not None else link_forms(url)
        anchor = fragment(url)
        return cls(url, canonical, key, tuple(variants), canonical, f"{key}#{anchor}" if anchor else None)


def _shared_pages(entries: list[ParsedEntry], links: dict[str, _Link]) -> dict[str, _Link]:
    """``links`` (entry key → link) with the links of entries that share their page with another
    entry of the document replaced by the link of the entry's own article (see ``store_entries``):
    keyed by the anchor (``url_key`` page key ``#fragment``, ``canonical_url`` page ``#fragment``)
    when no other entry of the page has the same link, else by the entry key (``url_key`` the page
    key, a space and the entry key; no canonical URL). Links of one page that differ only by
    spelling (scheme, trailing slash, AMP) and carry no fragment stay the page's. A key or URL
    longer than the URL columns (``MAX_URL_LENGTH``) is replaced by its SHA-256 (the URL by null)."""
    by_page: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        if entry.key in links:
            by_page[links[entry.key].key].append(entry.key)
    shared = [group for group in by_page.values() if len(group) > 1]
    if not shared:
        return links
    out = dict(links)
    for group in shared:
        spelled = Counter((links[key].canonical, links[key].anchor) for key in group)
        for key in group:
            link = links[key]
            if spelled[link.canonical, link.anchor] > 1:  # the same link under several entries: keyed by the entry
                own, canonical = f"{link.key} {key}", None
            elif link.anchor is not None:  # an anchor of its own
                own, canonical = link.anchor, f"{link.canonical}#{fragment(link.url)}"
            else:  # the page itself, one of its spellings
                continue
            if len(own) > MAX_URL_LENGTH:
                own = "sha256:" + hashlib.sha256(own.encode()).hexdigest()
            if canonical is not None and len(canonical) > MAX_URL_LENGTH:
                canonical = None
            out[key] = _Link(link.url, canonical, own, (canonical,) if canonical else (), link.page, None, len(group))
    return out


# The article columns storing entries reads and may change; never the texts.
_EDITABLE = ("feed_id", "url", "canonical_url", "title", "summary", "updated_at")


@dataclass
class _ArticleState:
    id: int
    feed_id: int | None
    url: str | None
    canonical_url: str | None
    url_key: str | None
    title: str | None
    summary: str | None
    updated_at: datetime | None
    edited: bool = False

    def set(self, name: str, value) -> None:
        if getattr(self, name) != value:
            setattr(self, name, value)
            self.edited = True


class _Storing(NamedTuple):
    """The SELECTs of ``store_entries`` and ``outlet_for`` (``_storing_statements``)."""

    known: sa.Select
    by_links: sa.Select
    not_in: sa.Select
    page_not_in: sa.Select
    outlet: sa.Select


@functools.cache
def _storing_statements(dialect: str) -> _Storing:
    """The SELECTs of ``store_entries`` and ``outlet_for`` on ``dialect``'s database
    (``db.dialect_name``), built once on the tables (Core: no ORM compile step; a statement reused
    is compiled from SQLAlchemy's cache without a walk for its cache key), each list of values
    bound as one parameter (``sql.in_bound``: one SQL text whatever the document's size). The
    article columns read are ``_ArticleState``'s; never the texts."""
    articles, entries, outlets, bind = table_of(Article), table_of(Entry), table_of(Outlet), sa.bindparam
    state = [articles.c[name] for name in ("id", "feed_id", "url", "canonical_url", "url_key", "title", "summary",
                                           "updated_at")]
    known = (sa.select(entries.c.entry_key, *state).join(articles, articles.c.id == entries.c.article_id)
             .where(entries.c.feed_id == bind("feed_id"), in_bound(entries.c.entry_key, "keys", dialect)))
    by_links = sa.select(*state).where(sa.or_(in_bound(articles.c.url_key, "keys", dialect),
                                              in_bound(articles.c.canonical_url, "variants", dialect)))
    not_in = (sa.select(entries.c.article_id, entries.c.id)
              .where(entries.c.feed_id == bind("feed_id"), in_bound(entries.c.article_id, "article_ids", dialect),
                     sa.not_(in_bound(entries.c.entry_key, "keys", dialect)))
              .order_by(entries.c.id.desc()))
    page_not_in = (sa.select(entries.c.link, entries.c.id, *state).join(articles, articles.c.id == entries.c.article_id)
                   .where(entries.c.feed_id == bind("feed_id"), in_bound(entries.c.link, "pages", dialect),
                          sa.not_(in_bound(entries.c.entry_key, "keys", dialect)))
                   .order_by(entries.c.id))
    outlet = sa.select(outlets.c.id).where(outlets.c.domain == bind("domain"))
    return _Storing(known, by_links, not_in, page_not_in, outlet)


def _known_entries(session: Session, feed_id: int,
                   entries: list[ParsedEntry]) -> tuple[list[ParsedEntry], dict[str, _ArticleState]]:
    """``(entries, known)``: ``known`` maps each key ``feed_id`` has stored already to its article;
    ``entries`` are given back with an entry whose key is not stored, but is stored as its
    ``repeated_key`` (it shared its key with another post in an earlier document, and that post has
    left), under that key: the post stays its own article, not an edit of the other's. One SELECT,
    for the keys and their ``repeated_key`` forms in one list."""
    keys = [e.key for e in entries]
    forms = {repeated_key(e.key, e.published_at, e.text): e.key for e in entries}
    statement = _storing_statements(dialect_name(session)).known
    found = {key: _ArticleState(*state)
             for key, *state in session.execute(statement, {"feed_id": feed_id, "keys": keys + list(forms)}).all()}
    listed = set(keys)
    known = {key: state for key, state in found.items() if key in listed}
    as_stored = {key: qualified for qualified, key in forms.items()
                 if key not in known and qualified not in known and qualified in found}
    if not as_stored:
        return entries, known
    known.update({qualified: found[qualified] for qualified in as_stored.values()})
    return [replace(e, key=as_stored[e.key]) if e.key in as_stored else e for e in entries], known


def _page_entries_not_in(session: Session, feed_id: int, pages: list[str], keys: list[str],
                         stored: _StoredArticles) -> dict[str, list[tuple[int, _ArticleState]]]:
    """Page (canonical URL, an entry's ``link``) → ``feed_id``'s entries on that page whose key is
    not in ``keys`` (the document's), oldest first, each with its article (added to ``stored``,
    which writes its edits). One SELECT; none when ``pages`` is empty."""
    if not pages:
        return {}
    out: dict[str, list[tuple[int, _ArticleState]]] = {}
    statement = _storing_statements(dialect_name(session)).page_not_in
    for page, entry_id, *state in session.execute(statement, {"feed_id": feed_id, "pages": pages, "keys": keys}).all():
        article = stored.articles.setdefault(state[0], _ArticleState(*state))
        out.setdefault(page, []).append((entry_id, article))
    return out


def _entries_not_in(session: Session, feed_id: int, article_ids: list[int], keys: list[str]) -> dict[int, list[int]]:
    """Article id → ids of ``feed_id``'s entries of that article whose key is not in ``keys`` (one
    SELECT; none when ``article_ids`` is empty)."""
    if not article_ids:
        return {}
    out: dict[int, list[int]] = {}
    not_in = _storing_statements(dialect_name(session)).not_in
    for article_id, entry_id in session.execute(not_in, {"feed_id": feed_id, "article_ids": article_ids, "keys": keys}).all():
        out.setdefault(article_id, []).append(entry_id)
    return out


class _StoredArticles:
    """The stored articles one feed document refers to, with the edits the document makes to them."""

    def __init__(self, by_entry_key: dict[str, _ArticleState]) -> None:
        self.by_entry_key = by_entry_key
        self.by_url_key: dict[str, _ArticleState] = {}
        self.by_canonical: dict[str, _ArticleState] = {}
        self.articles = {state.id: state for state in by_entry_key.values()}

    def load_links(self, session: Session, links: list[_Link]) -> None:
        """Load the articles stored under any of ``links``: by dedup key or by any canonical variant
        (one SELECT, an OR of two IN lists, each on its own unique index)."""
        if not links:
            return
        variants = sorted({variant for link in links for variant in link.variants})
        keys = sorted({link.key for link in links} | {link.anchor for link in links if link.anchor})
        by_links = _storing_statements(dialect_name(session)).by_links
        for row in session.execute(by_links, {"keys": keys, "variants": variants}).all():
            state = self.articles.setdefault(row[0], _ArticleState(*row))
            if state.url_key:
                self.by_url_key[state.url_key] = state
            if state.canonical_url:
                self.by_canonical[state.canonical_url] = state

    def linked_ids(self) -> list[int]:
        return sorted({state.id for state in (*self.by_url_key.values(), *self.by_canonical.values())})

    def for_link(self, link: _Link) -> _ArticleState | None:
        """The article stored under ``link``: by its anchor (a post of a shared page stored from
        another feed), else its dedup key, else its first stored variant."""
        found = self.by_url_key.get(link.anchor) if link.anchor else None
        if found is None:
            found = self.by_url_key.get(link.key)
        if found is None:
            found = next((self.by_canonical[v] for v in link.variants if v in self.by_canonical), None)
        return found

    @staticmethod
    def prefer_https(article: _ArticleState, link: _Link | None) -> None:
        """Store the https form of an article first seen over http (BL-16)."""
        if link is None or link.canonical is None or not link.canonical.startswith("https://"):
            return
        if article.canonical_url and article.canonical_url.startswith("http://") and (
            article.canonical_url[len("http://"):] == link.canonical[len("https://"):]
        ):
            article.set("canonical_url", link.canonical)
        if article.url and article.url.startswith("http://") and link.url.startswith("https://"):
            article.set("url", link.url)

    @staticmethod
    def adopt(article: _ArticleState, feed: FeedKeys) -> None:
        """An article without a feed (the feeds that listed it were unsubscribed, ``feeds.remove``)
        becomes the feed's that lists it now."""
        if article.feed_id is None:
            article.set("feed_id", feed.id)

    def edit(self, article: _ArticleState, feed: FeedKeys, entry: ParsedEntry, link: _Link | None, now: datetime) -> None:
        """Apply an entry seen again: https upgrade from any feed, ``adopt``; title, summary and
        update time only from the article's own feed."""
        self.prefer_https(article, link)
        self.adopt(article, feed)
        if article.feed_id != feed.id:
            return
        if entry.title:
            article.set("title", entry.title)
        if entry.summary_html:
            article.set("summary", entry.summary_html)
        if entry.updated_at:
            article.set("updated_at", _clamp(entry.updated_at, now))

    def write_edits(self, session: Session) -> None:
        """One executemany UPDATE of the edited articles (none when nothing changed)."""
        edited = [{"article_id": a.id, **{f"new_{name}": getattr(a, name) for name in _EDITABLE}}
                  for a in self.articles.values() if a.edited]
        if not edited:
            return
        table = table_of(Article)
        session.execute(
            sa.update(table).where(table.c.id == sa.bindparam("article_id"))
            .values(**{name: sa.bindparam(f"new_{name}", type_=table.c[name].type) for name in _EDITABLE}),
            edited,
        )


@functools.cache
def _inserts(insert: Callable[[sa.Table], Any]) -> tuple[sa.Insert, sa.Insert]:
    """``store_entries``'s INSERTs of new articles (``RETURNING id, url_key``) and of new entries,
    each skipping a conflicting row, built once per dialect (``insert``: ``db.dialect_insert``'s
    construct): a statement reused is compiled from SQLAlchemy's cache without a walk for its cache
    key."""
    articles, entries = table_of(Article), table_of(Entry)
    return (insert(articles).on_conflict_do_nothing().returning(articles.c.id, articles.c.url_key),
            insert(entries).on_conflict_do_nothing(index_elements=["feed_id", "entry_key"]))


def _insert_articles(session: Session, articles: list[dict]) -> set[int]:
    """INSERT the ``articles`` rows (``_new_article``) in one statement, skipping any whose canonical
    URL or dedup key another transaction (a replica, or a feed polled at the same time) has just
    stored; sets each row's ``id`` (the existing article's when skipped) and returns the ids of
    those created.

    Returned rows are matched by ``url_key`` (unique); articles without a link have none and can
    never conflict, so each is inserted and their ids, ascending, follow the order of the rows
    (both databases number the rows of one INSERT in order)."""
    if not articles:
        return set()
    # executemany: SQLAlchemy sends one multi-row INSERT (its "insertmanyvalues"), and the
    # statement is compiled once and cached, not once per document as ``.values(list)`` would be.
    rows = session.execute(_inserts(dialect_insert(session))[0], [{k: v for k, v in a.items() if k != "id"} for a in articles]).all()
    by_key = {url_key: article_id for article_id, url_key in rows if url_key is not None}
    unlinked = iter(sorted(article_id for article_id, url_key in rows if url_key is None))
    for article in articles:
        article["id"] = by_key.get(article["url_key"]) if article["url_key"] else next(unlinked)
    missing = [article for article in articles if article["id"] is None]
    if missing:  # stored meanwhile by another transaction: use theirs
        query = select(Article.id, Article.url_key, Article.canonical_url).where(sa.or_(
            col(Article.url_key).in_([a["url_key"] for a in missing]),
            col(Article.canonical_url).in_([a["canonical_url"] for a in missing]),
        ))
        existing = session.execute(query).all()
        for article in missing:
            article["id"] = next((i for i, key, canonical in existing
                                  if key == article["url_key"] or canonical == article["canonical_url"]), None)
            if article["id"] is None:  # pragma: no cover - a conflict we cannot see: let the caller's guard record it
                raise RuntimeError(f"article {article['canonical_url']} conflicts but cannot be found")
    return {article_id for article_id, _ in rows}


def _new_article(entry: ParsedEntry, link: _Link | None, feed: FeedKeys, outlet_id: int | None, now: datetime) -> dict:
    """The ``articles`` row (column → value, ``id`` None until inserted) of an entry's new article.
    A plain dict: building a SQLModel instance per entry cost more than storing it."""
    published = _clamp(entry.published_at, now)
    status = ExtractionStatus.pending if entry.link and not (link and link.shared_by) else ExtractionStatus.skipped
    return dict(
        id=None,
        canonical_url=link.canonical if link else None,
        url_key=link.key if link else None,
        url=entry.link,
        host=host_key(entry.link) if entry.link else None,
        feed_id=feed.id,
        outlet_id=outlet_id,
        guid=entry.guid,
        title=entry.title,
        summary=entry.summary_html,
        feed_content=entry.content_html,
        text=entry.text or None,
        text_source="feed" if entry.text else None,
        authors=entry.authors,
        enclosures=entry.enclosures,
        backlog=feed.content_hash is None,  # no document of this feed was parsed before
        published_at=published,
        published_raw=entry.published_raw,
        updated_at=_clamp(entry.updated_at, now),
        first_seen_at=now,
        sort_at=published or now,
        language=entry.language,
        word_count=word_count(entry.text),
        extraction_status=status.value,
        extraction_error=_skipped_because(entry, link) if status == ExtractionStatus.skipped else None,
        fetch_attempts=0,
        next_fetch_at=now if status == ExtractionStatus.pending else None,
    )


def _skipped_because(entry: ParsedEntry, link: _Link | None) -> str:
    """Why a new article's page is not fetched (``extraction_error`` of a ``skipped`` article)."""
    if link is not None:
        return (f"its page is shared by {link.shared_by} entries of the feed document: each keeps its own text "
                "from the feed, the page is not fetched")
    if entry.link_refused:
        return f"the entry's link cannot be fetched: {entry.link_refused}"
    return "the entry has no link"


def lease_due_pages(
    session: Session, owner: str, lease_seconds: float, limit: int, feed_ids: list[int] | None = None,
    room: Callable[[str], int] | None = None,
) -> list[Article]:
    """Lease to ``owner`` for ``lease_seconds`` seconds up to ``limit`` articles whose page is due
    for fetching (``page_is_due``) and that nobody else holds, oldest due first, taking turns
    between hosts and at most ``room(host)`` articles of one host when ``room`` is given (as
    ``leases.claim_rows`` with a spread; ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL).
    ``feed_ids`` restricts the claim to articles first seen in those feeds. Returns them in that
    order. Does not commit; two statements (the due pages' ids and hosts, then the lease stamp;
    ``leases.claim_rows``), one when nothing is due, two more when the first due pages are all of
    hosts without room (the first due page of each host, ``leases.firsts_query``). For the poller's ``Writer`` (one hand-off to its
    thread on SQLite, as the page's booking)."""
    query, firsts = _DUE_PAGES if feed_ids is None else _due_pages(col(Article.feed_id).in_(feed_ids))
    return leases.claim_rows(session, Article, query, utcnow(), owner, lease_seconds, limit, spread=str, room=room,
                             firsts=firsts)


def _due_pages(*conditions: sa.ColumnElement[bool]) -> tuple[sa.Select, leases.Firsts]:
    """``lease_due_pages``'s reads of the due pages nobody holds (ids and hosts, ``:read`` of them,
    at ``:now``), with ``conditions`` besides ``page_is_due``: the first ones (``leases.due_query``),
    and the first one of each host (``leases.firsts_query``, on ``ix_articles_host_queue``; a page's
    host is never empty: ``_new_article`` stores only fetchable links as pending)."""
    now = sa.bindparam("now", type_=table_of(Article).c.next_fetch_at.type)
    due, order = [*page_is_due(now), *conditions], [col(Article.next_fetch_at), col(Article.id)]
    return (leases.due_query(Article, due, order, spread_column=col(Article.host)),
            leases.firsts_query(Article, due, order, col(Article.host), ""))


_DUE_PAGES = _due_pages()
"""``_due_pages`` of every feed, built once."""


def record_extraction(session: Session, article: Article, page_url: str, extracted: ExtractedArticle) -> None:
    """Store the text and metadata extracted from ``article``'s page and release its lease.

    Precedence, field by field (the feed's values were stored with the entry):

    * ``title``, ``authors``: the feed's, else the page's (the feed states them explicitly and
      without site-name decoration; the page's are chosen among several candidates);
    * ``published_at``: the page's declared time (JSON-LD / ``<meta>``), else the feed's, else the
      page's htmldate guess; ``updated_at``: the page's, else the feed's. Never later than now;
    * ``language``: identified from the page text when confident, else the page's ``lang``, else
      the feed's (BL-32: a site-wide ``lang="en"`` or ``<language>`` must not beat the text);
    * ``canonical_url``: the page's ``rel=canonical``/``og:url``, else ``page_url`` (where the
      page was served from after redirects: an entry link through a feed proxy such as
      ``feeds.example.org/~r/…`` is stored under the article's own URL), unless another article
      holds it;
    * ``site_name``, ``image_url``, ``word_count``, ``content_hash``: the page's.

    A wall (paywall, consent) is a flag (``access``, ``access_reason``), never a reason to drop
    text. Behind one the best text available is kept, with ``text_source`` saying where it came
    from: the feed's content when it is clearly the whole article (judged in the worker by
    ``extract_page``), else the longer of the page's teaser and the feed's text stored with the
    entry. Status ``ok`` when text was kept; ``failed`` with the wall as reason when there is
    none anywhere. Synchronous (the poller's ``Writer``); does not commit. One statement besides the
    row's UPDATE: whether another article holds the canonical URL (``_CANONICAL_TAKEN``), read
    before the row changes so that the session flushes the row once, at commit.
    """
    now = utcnow()
    page_canonical = next((u for u in (extracted.canonical_url, page_url) if u and fits(u)), None)
    canonical = canonicalize(page_canonical) if page_canonical else None
    if canonical is not None and session.execute(_CANONICAL_TAKEN, {"url": canonical, "id": article.id}).first():
        canonical = None
    article.title = article.title or clip_title(extracted.title)
    article.authors = article.authors or extracted.authors
    page_published = _clamp(extracted.published_at, now)
    if page_published is not None and (not extracted.published_guessed or article.published_at is None):
        article.published_at = page_published
        article.sort_at = page_published
    article.updated_at = _clamp(extracted.updated_at, now) or article.updated_at
    article.site_name = extracted.site_name
    article.image_url = extracted.image
    article.fetched_at = now
    if canonical is not None:
        article.canonical_url = canonical
    article.access, article.access_reason = extracted.access, extracted.access_reason
    if extracted.access != "free" and extracted.feed_text and extracted.feed_text_complete:
        _set_text(article, extracted.feed_text, "feed")
    elif extracted.access != "free" and word_count(article.text or "") > extracted.word_count:
        pass  # the feed's text stored with the entry is more than the page's teaser
    elif extracted.text:
        _set_text(article, extracted.text, "page")
    if article.text:
        article.extraction_status = ExtractionStatus.ok
        article.extraction_error = None
    else:
        article.extraction_status = ExtractionStatus.failed
        article.extraction_error = f"{extracted.access}: {extracted.access_reason}; no text on the page or in the feed"
    if extracted.language:
        article.language = extracted.language
        article.language_confidence = extracted.language_confidence
    leases.release(article)


_CANONICAL_TAKEN = sa.select(table_of(Article).c.id).where(
    table_of(Article).c.canonical_url == sa.bindparam("url"), table_of(Article).c.id != sa.bindparam("id")).limit(1)
"""Whether an article other than ``:id`` holds the canonical URL ``:url`` (``record_extraction``),
built once."""


def book_extraction(session: Session, article_id: int, page_url: str, extracted: ExtractedArticle) -> Article | None:
    """``record_extraction`` on the current row of the claimed article ``article_id``: that row
    as booked, or None when the article was deleted meanwhile (nothing written). Synchronous (the
    poller's ``Writer``); does not commit. Three statements: the row's SELECT, ``_CANONICAL_TAKEN``
    and the row's UPDATE."""
    current = session.get(Article, article_id)
    if current is not None:
        record_extraction(session, current, page_url, extracted)
    return current


def book_page_failure(session: Session, article_id: int, reason: str, retry_in: float | None) -> bool:
    """``record_page_failure`` on the current row of the claimed article ``article_id``; False when
    the article was deleted meanwhile or its page is no longer ``pending`` (nothing written: a
    page step cancelled at its deadline after its booking committed must not undo it).
    Synchronous (the poller's ``Writer``); does not commit."""
    current = session.get(Article, article_id)
    if current is None or current.extraction_status != ExtractionStatus.pending:
        return False
    record_page_failure(current, reason, retry_in=retry_in)
    return True


async def next_fetch_at(session: AsyncSession) -> datetime | None:
    """The earliest next fetch time (UTC) of the pages waiting for extraction (``pending``) that
    nobody holds a lease on, past or future; None when there is none. Read-only (ends its
    transaction)."""
    return await leases.next_due(session, Article, [Article.extraction_status == ExtractionStatus.pending],
                                 Article.next_fetch_at)


def _set_text(article: Article, text: str, source: str) -> None:
    article.text = text
    article.text_source = source
    article.word_count = word_count(text)
    article.content_hash = content_hash(text)


def record_page_failure(article: Article, reason: str, *, retry_in: float | None) -> None:
    """Book a page that could not be fetched or extracted.

    With ``retry_in`` (seconds) the page stays ``pending`` and is tried again then; without it the
    article is marked ``failed`` with ``reason`` and keeps the feed's own content or summary as its
    text (stored with the entry, ``text_source`` = ``feed``). Releases the lease; does not commit.
    """
    now = utcnow()
    article.fetch_attempts += 1
    article.extraction_error = reason
    if retry_in is not None:
        article.next_fetch_at = now + timedelta(seconds=retry_in)
    else:
        article.extraction_status = ExtractionStatus.failed
        article.next_fetch_at = None
    leases.release(article)


# -- read side: the API's lists, one article, citations, outlets -------------------------------------

LISTED = (
    "id", "url", "canonical_url", "feed_id", "outlet", "title", "summary", "authors", "published_at", "published_raw",
    "updated_at", "first_seen_at", "fetched_at", "language", "language_confidence", "site_name", "image_url", "word_count",
    "text_source", "extraction_status", "extraction_error", "fetch_failures", "next_fetch_at", "access", "access_reason",
    "enclosures", "story_id",
    "duplicate_of", "similarity",
)
"""What an article shows as listed, in the order of ``shapes.ArticleSummary`` (whose last member,
``cites``, comes from ``citations_of``): the ``articles`` columns of those names and ``outlet``, the
outlet's domain. Never the texts, the feed's content or the MinHash signature, which made a list
page cost three times a ``/healthz``."""

_articles, _outlets, _citations = table_of(Article), table_of(Outlet), table_of(Citation)


def _listed_columns() -> list[sa.ColumnElement]:
    """``LISTED`` in its order, then whether the article cites anyone (``has_cites``: an index probe,
    so that a page citing nobody needs no second statement) and ``sort_at`` for the cursor."""
    cites = sa.exists().where(_citations.c.article_id == _articles.c.id).label("has_cites")
    special = {"outlet": _outlets.c.domain.label("outlet"), "fetch_failures": _articles.c.fetch_attempts.label("fetch_failures"),
               "next_fetch_at": _RETRY_AT}
    listed = [special[name] if name in special else _articles.c[name] for name in LISTED]
    return [*listed, cites, _articles.c.sort_at]


_RETRY_AT = sa.case((_articles.c.extraction_status == ExtractionStatus.pending.value, _articles.c.next_fetch_at)).label("next_fetch_at")
"""``next_fetch_at`` as the API shows it: only while the page is ``pending`` (the column keeps its
last value once the page is done)."""


@functools.lru_cache(maxsize=256)
def _list_statement(dialect: str, search: bool, config: str | None, feed: bool, story: bool, lang: bool,
                    since: bool, until: bool, resume: bool) -> sa.Select:
    """The list SELECT of one shape (which filters are given), its values left as bound parameters
    (``_list_shape``): built and compiled once per shape, not per request. ``config``: the one text
    search configuration PostgreSQL renders a search in (a ``lang`` filter), else None.

    The whole list and a language's come in the order of an index on articles (``ix_articles_sort``,
    ``ix_articles_language_sort``), the page a range of it: one step. The others take two: the
    page's keys first (``page``: id, ``sort_at`` and the rank, filtered, sorted and limited), then
    the listed columns of those rows only. A feed's keys come in the order of
    ``ix_entries_feed_sort``, on the entries' copy of ``sort_at`` (before it, each page read and
    sorted all of the feed's articles); a story's articles and search matches are sorted on their
    keys alone (in one step each was also joined to its outlet and probed for citations before the
    sort, not only the page's)."""
    match = article_match(dialect, None, [config] if config else None) if search else None
    entries = table_of(Entry)
    by_feed = feed and match is None  # a feed's entries in order (ix_entries_feed_sort, migration 0010)
    keys: list[sa.ColumnElement] = [entries.c.sort_at, entries.c.article_id] if by_feed else [_articles.c.sort_at, _articles.c.id]
    if match is not None:
        keys.insert(0, match.rank)
    query = sa.select(*(key.label(name) for key, name in zip(keys, ("rank", "sort_at", "id")[-len(keys):], strict=True)))
    if by_feed:
        # One article may have several entries in a feed: DISTINCT, which the index order keeps streaming.
        query = query.select_from(entries).where(entries.c.feed_id == sa.bindparam("feed_id")).distinct()
        if story or lang:
            query = query.join(_articles, _articles.c.id == entries.c.article_id)
    else:
        query = query.select_from(_articles)
    if match is not None:
        if match.join is not None:
            query = query.join(*match.join)
        query = query.where(match.where)
        if feed:  # the matches drive; the feed's entries are probed (ix_entries_feed_article)
            query = query.where(_articles.c.id.in_(sa.select(entries.c.article_id).where(entries.c.feed_id == sa.bindparam("feed_id"))))
    if story:
        query = query.where(_articles.c.story_id == sa.bindparam("story_id"))
    if lang:
        query = query.where(_articles.c.language == sa.bindparam("lang"))
    moment = _articles.c.sort_at.type
    if since:
        query = query.where(keys[-2] >= sa.bindparam("since", type_=moment))
    if until:
        query = query.where(keys[-2] < sa.bindparam("until", type_=moment))
    after = [sa.bindparam(f"after_{i}", type_=key.type) for i, key in enumerate(keys)] if resume else None
    limit = sa.bindparam("limit", type_=sa.Integer)
    if not (by_feed or match is not None or story):  # in the order of an index on articles: one step
        rows = query.with_only_columns(*_listed_columns()).join(_outlets, _outlets.c.id == _articles.c.outlet_id, isouter=True)
        return sql.newest_first(rows, keys, after, limit)
    page = sql.newest_first(query, keys, after, limit).subquery("page")
    columns = _listed_columns() + ([page.c.rank] if match is not None else [])
    return (sa.select(*columns).select_from(page)
            .join(_articles, _articles.c.id == page.c.id)
            .join(_outlets, _outlets.c.id == _articles.c.outlet_id, isouter=True)
            .order_by(*(column.desc() for column in page.c)))


def _list_shape(
    dialect: str, *, limit: int, q: SearchQuery | None, feed_id: int | None, lang: str | None, since: datetime | None,
    until: datetime | None, after: tuple | None, story_id: int | None,
) -> tuple[sa.Select, dict]:
    """The cached statement for these filters (``_list_statement``) and the values of its parameters.
    ``lang`` is normalised first (``en-US`` → ``en``, as stored) and the cache keyed on what the
    statement depends on: whether there is a ``lang`` filter and, for a search on PostgreSQL, its
    configuration; never on the code itself."""
    lang = language_code(lang)
    config = PG_CONFIGS.get(lang, PG_DEFAULT_CONFIG) if q is not None and lang and dialect == "postgresql" else None
    statement = _list_statement(dialect, q is not None, config, feed_id is not None, story_id is not None, lang is not None,
                                since is not None, until is not None, after is not None)
    given = {"feed_id": feed_id, "story_id": story_id, "lang": lang, "since": since, "until": until, "limit": limit}
    params: dict[str, object] = {name: value for name, value in given.items() if value is not None}
    if q is not None:
        params.update(q.render(dialect))
    params.update({f"after_{i}": value for i, value in enumerate(after or ())})
    return statement, params


def list_query(
    dialect: str, *, limit: int, q: SearchQuery | None = None, feed_id: int | None = None, lang: str | None = None,
    since: datetime | None = None, until: datetime | None = None, after: tuple | None = None, story_id: int | None = None,
) -> sa.Select:
    """The SELECT behind ``GET /v1/articles`` for ``dialect`` ("postgresql" or "sqlite"), its values
    bound: rows of the ``LISTED`` columns (in that order), ``has_cites`` and ``sort_at`` — plus the
    relevance ``rank`` when ``q`` is given — at most ``limit``.

    Without ``q``: newest first by (sort_at, id), resuming after ``after`` = (moment, id). With
    ``q``: most relevant first, then newest, resuming after ``after`` = (rank, moment, id); see
    ``service.search`` for the matching on each database. Every filter is served by an index
    (migration 0006; ``bench/api.py`` shows the plans)."""
    statement, params = _list_shape(dialect, limit=limit, q=q, feed_id=feed_id, lang=lang, since=since, until=until,
                                    after=after, story_id=story_id)
    return statement.params(params)


def listed(
    session: Session, *, limit: int, q: SearchQuery | None = None, feed_id: int | None = None, lang: str | None = None,
    since: datetime | None = None, until: datetime | None = None, after: tuple | None = None, story_id: int | None = None,
) -> Sequence[sa.Row]:
    """``list_query`` run on the session's database: at most ``limit`` rows (``sa.Row``: ``LISTED``
    in order, then ``has_cites``, ``sort_at``, and ``rank`` with ``q``). ``since``/``until`` are UTC
    moments on ``sort_at``; ``lang`` an ISO 639-1 code (any case; a region, ``en-US``, is dropped);
    ``after`` the keys of the previous page's last row (see ``list_query``). The statement of each
    shape is built once. Synchronous: the API runs it with ``db.Reader`` (one hand-off on SQLite)."""
    statement, params = _list_shape(dialect_name(session), limit=limit, q=q, feed_id=feed_id, lang=lang, since=since,
                                    until=until, after=after, story_id=story_id)
    return session.execute(statement, params).all()


def by_id(session: Session, article_id: int) -> sa.Row | None:
    """Article ``article_id`` as one row: ``LISTED`` in order, ``has_cites``, ``sort_at`` and its
    ``text``; None when there is no such article. Synchronous (``db.Reader``, or ``run_sync``)."""
    query = (
        sa.select(*_listed_columns(), _articles.c.text)
        .select_from(_articles)
        .join(_outlets, _outlets.c.id == _articles.c.outlet_id, isouter=True)
        .where(_articles.c.id == article_id)
    )
    return session.execute(query).first()


def citations_of(session: Session, article_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Article id → the outlets it cites, in order of storage, as ``{"name": str, "outlet": domain
    or None, "article_id": the cited outlet's article or None}`` (``shapes.CitationPublic``); only
    articles that cite anyone appear. One statement (none for no ids). Synchronous: the article
    list reads it with its page (``views.summary_page``), others through ``run_sync``."""
    ids = list(article_ids)
    if not ids:
        return {}
    query = (
        sa.select(_citations.c.article_id, _citations.c.name, _outlets.c.domain, _citations.c.cited_article_id)
        .select_from(_citations)
        .join(_outlets, _outlets.c.id == _citations.c.outlet_id, isouter=True)
        .where(_citations.c.article_id.in_(ids))
        .order_by(_citations.c.id)
    )
    out: dict[int, list[dict]] = defaultdict(list)
    for article_id, name, domain, cited in session.execute(query):
        out[article_id].append({"name": name, "outlet": domain, "article_id": cited})
    return dict(out)


def outlet_domains(session: Session, outlet_ids: Iterable[int]) -> dict[int, str]:
    """Outlet id → registrable domain (``welt.de``), for those of ``outlet_ids`` that exist.
    Synchronous (``db.Reader``, or ``run_sync``)."""
    ids = set(outlet_ids)
    if not ids:
        return {}
    rows = session.execute(sa.select(_outlets.c.id, _outlets.c.domain).where(_outlets.c.id.in_(ids)))
    return {outlet_id: domain for outlet_id, domain in rows}
# -- what webhook events need (``webhooks.outbox``) ----------------------------------------------

_ANY_COMPLETE = sa.select(table_of(Article).c.id).where(
    table_of(Article).c.id.in_(sa.bindparam("ids", expanding=True)),
    table_of(Article).c.extraction_status != ExtractionStatus.pending.value,
).limit(1)
# Built once (Core, on the table): reused, it is compiled from SQLAlchemy's cache without a walk for its cache key.


def any_complete(session: Session, article_ids: list[int]) -> bool:
    """Whether some of ``article_ids`` is complete: its page extracted or given up on (not
    ``pending``). Synchronous; one SELECT (none for no ids)."""
    return bool(article_ids) and session.execute(_ANY_COMPLETE, {"ids": article_ids}).first() is not None


def get(session: Session, article_id: int) -> Article | None:
    """The article ``article_id``, or None (synchronous, as the rest of the outbox's reads)."""
    return session.get(Article, article_id)


def outlet_and_feeds(session: Session, article: Article) -> tuple[str | None, set[int]]:
    """``article``'s outlet domain (None without an outlet) and the ids of the feeds it was seen in
    (its ``entries``). Synchronous."""
    outlet = session.scalars(select(Outlet.domain).where(Outlet.id == article.outlet_id)).first() if article.outlet_id else None
    feed_ids = set(session.scalars(select(Entry.feed_id).where(Entry.article_id == article.id)).all())
    return outlet, feed_ids


def story_outlet_count(session: Session, article: Article) -> int:
    """How many outlets ``article``'s story has (1 when the article has no story). Synchronous."""
    story = session.get(Story, article.story_id) if article.story_id else None  # in the session already, often
    return story.outlet_count if story is not None else 1
