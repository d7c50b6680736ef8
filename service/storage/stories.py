"""Stories: the statements of the story step (``service.stories.linker``) — the claim of articles
to link and the article row an assignment reads and writes (Core rows, not ORM objects), the story
lock, the stories of a time window and their decoded state, story rows, near-duplicate candidates
(LSH bands), outlets named in citations, citations, merges — and a cache of decoded story states.

Every function is synchronous: it takes the caller's ``sqlalchemy.orm.Session`` and runs in its
transaction (the linker runs a whole assignment as one transaction through ``db.Writer``: on a
SQLite file one hand-off to the writer thread instead of one per statement); none commits. Times are timezone-aware UTC ``datetime``s; story vectors are unit centroids as
little-endian float16 bytes (``Story.vector``), states the clusterer's JSON records
(``Story.state``), decoded by the caller's function (this layer imports no story code).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select

from service.db import dialect_insert, dialect_name
from service.models import (
    Article,
    ArticleBand,
    Citation,
    ExtractionStatus,
    Feed,
    Outlet,
    Story,
    StoryLock,
    table_of,
    utcnow,
)
from service.storage import leases

S = TypeVar("S")

LOCK_NAME = "stories"
"""The ``story_locks`` row that serialises story assignment (``lock``)."""


_UNLINKED = leases.due_query(
    Article, [col(Article.linked_at).is_(None), Article.extraction_status != ExtractionStatus.pending],
    [col(Article.sort_at), col(Article.id)], until_column="link_lease_until",
)
# Built once: every claim of the linker runs it.


class Unlinked(NamedTuple):
    """A claimed article as the linker reads it before its assignment (``claim_unlinked``; a row,
    not an ORM object): id, title, text, language and time (``sort_at``, UTC)."""

    id: int
    title: str | None
    text: str | None
    language: str | None
    sort_at: datetime


_UNLINKED_COLUMNS = tuple(table_of(Article).c[name] for name in Unlinked._fields)


def claim_unlinked(session: Session, lease_seconds: float, limit: int) -> list[Unlinked]:
    """Lease (``link_lease_until``, ``lease_seconds`` from now) up to ``limit`` articles not yet
    linked whose text is final (extraction not pending), oldest publication first (``sort_at``,
    then id): ``leases.claim_rows`` (one SELECT, and one UPDATE … RETURNING when some are due, of
    the columns of ``Unlinked``: no ORM objects, whose loading cost most of a claim)."""
    rows = leases.claim_rows(session, Article, _UNLINKED, utcnow(), None, lease_seconds, limit, until_column="link_lease_until",
                             returning=_UNLINKED_COLUMNS)
    return [Unlinked._make(row) for row in rows]


def lock(session: Session) -> int:
    """Take the story lock: upsert the ``story_locks`` row ``LOCK_NAME``. As the transaction's first
    statement it serialises story writers across tasks, processes and replicas (a row lock on
    PostgreSQL, the database write lock on SQLite) until the transaction ends. Returns the lock's
    counter after this upsert: every story write is made under the lock, so one more than the
    counter an earlier holder got means no story changed since that holder's commit."""
    dialect = dialect_name(session)
    statement = _LOCKS.get(dialect)
    if statement is None:  # built once per dialect, then run as Core on the session's connection
        locks = table_of(StoryLock)
        statement = _LOCKS[dialect] = (
            dialect_insert(session)(locks).values(name=LOCK_NAME, counter=1)
            .on_conflict_do_update(index_elements=["name"], set_={"counter": locks.c.counter + 1}).returning(locks.c.counter)
        )
    return session.connection().execute(statement).scalar_one()


_LOCKS: dict[str, sa.Insert] = {}
"""``lock``'s upsert by dialect name."""


class WindowStory(NamedTuple):
    """A story of a time window as ``window`` reads it: id, unit centroid (float16 bytes), article
    count, and ``version`` (last update time and article count: changes whenever its state does)."""

    id: int
    vector: bytes
    article_count: int
    version: tuple[datetime, int]


_STORIES, _ARTICLES, _BANDS = table_of(Story), table_of(Article), table_of(ArticleBand)
# The reads of every assignment are Core statements built once, run on the session's connection:
# no ORM compile state, no statement built and walked for its cache key at each call, no autoflush
# (they read rows the assignment does not change before them: stories are flushed as they are
# saved, ``save_story``).

_WINDOW = sa.select(_STORIES.c.id, _STORIES.c.vector, _STORIES.c.article_count, _STORIES.c.last_updated_at).where(
    _STORIES.c.last_published_at >= sa.bindparam("since"), _STORIES.c.first_published_at <= sa.bindparam("until"))


def window(session: Session, moment: datetime, hours: float) -> list[WindowStory]:
    """The stories whose publication span comes within ``hours`` of ``moment`` (UTC), in id order:
    one ``SELECT`` on the index of ``Story.last_published_at``, without their states (see
    ``StateCache``). The rows are put in id order here, not by the query: with an ``ORDER BY``
    SQLite's planner walks the whole table in id order instead of the index, so the read grew
    with the corpus rather than with the window."""
    span = timedelta(hours=hours)
    rows = session.connection().execute(_WINDOW, {"since": moment - span, "until": moment + span})
    return sorted((WindowStory(sid, vector, count, (updated, count)) for sid, vector, count, updated in rows), key=lambda row: row.id)


_STATES = sa.select(_STORIES.c.id, _STORIES.c.state, _STORIES.c.last_updated_at, _STORIES.c.article_count).where(
    _STORIES.c.id.in_(sa.bindparam("ids", expanding=True)))


@dataclass
class _Kept(Generic[S]):
    version: tuple[datetime, int]
    state: S


class StateCache(Generic[S]):
    """Decoded story states by story id, kept while the story's ``WindowStory.version`` is unchanged,
    so an article's turn decodes only the states that changed since they were last read (the one
    story the previous article joined, typically) instead of every story it is scored against.
    ``decode(story_id, record)`` turns a ``Story.state`` record into the caller's state object;
    callers must not change the objects ``states`` returns (copy them first). At most ``size``
    states are held, the least recently used dropped first. Safe across processes: another
    replica's update changes the version, and the state is read again. Not locked: the linker reads
    it only inside its transactions, which its ``db.Writer`` runs one after another (on a SQLite
    file on the writer's one thread, elsewhere on the event loop)."""

    def __init__(self, decode: Callable[[int, dict], S], size: int = 2048) -> None:
        self.decode = decode
        self.size = size
        self._kept: OrderedDict[int, _Kept[S]] = OrderedDict()

    def states(self, session: Session, stories: Iterable[WindowStory]) -> dict[int, S]:
        """The decoded states of ``stories`` (as ``window`` read them in this transaction), by id:
        from the cache where the version matches, else read (one ``SELECT`` for all) and kept."""
        wanted = list(stories)
        out: dict[int, S] = {}
        missing: dict[int, WindowStory] = {}
        for story in wanted:
            kept = self._kept.get(story.id)
            if kept is not None and kept.version == story.version:
                self._kept.move_to_end(story.id)
                out[story.id] = kept.state
            else:
                missing[story.id] = story
        if missing:
            rows = session.connection().execute(_STATES, {"ids": list(missing)})
            for sid, record, updated, count in rows:
                state = self.decode(sid, dict(record))
                out[sid] = state
                self.keep(sid, (updated, count), state)
        return {story.id: out[story.id] for story in wanted if story.id in out}

    def keep(self, story_id: int, version: tuple[datetime, int], state: S) -> None:
        """Hold ``state`` as story ``story_id``'s at ``version`` (``states`` keeps what it decodes, the linker the
        states it writes; a story merged away is simply never asked for again and ages out). The caller must not
        change ``state`` afterwards."""
        self._kept[story_id] = _Kept(version, state)
        self._kept.move_to_end(story_id)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


def story(session: Session, story_id: int) -> Story | None:
    """The story row ``story_id`` (the linker changes it; the API reads it), or None when there is
    none (never made, or merged away)."""
    return session.get(Story, story_id)


def stories(session: Session, story_ids: list[int]) -> list[Story]:
    """The story rows of ``story_ids`` that exist, in no particular order."""
    if not story_ids:
        return []
    return list(session.scalars(select(Story).where(col(Story.id).in_(story_ids))).all())


def first_members(session: Session, story_id: int, limit: int) -> list[tuple[int, str | None, str | None, str | None]]:
    """The ``limit`` earliest articles of story ``story_id`` (publication order, then id):
    (article id, title, text, language)."""
    rows = session.execute(
        select(Article.id, Article.title, Article.text, Article.language).where(Article.story_id == story_id)
        .order_by(col(Article.sort_at), col(Article.id)).limit(limit)
    ).all()
    return [tuple(row) for row in rows]


class Linking(NamedTuple):
    """An article as the assignment reads it (``for_linking``): the columns it decides with."""

    id: int
    title: str | None
    text: str | None
    language: str | None
    outlet_id: int | None
    sort_at: datetime
    content_hash: str | None
    linked_at: datetime | None


_FOR_LINKING = sa.select(*(_ARTICLES.c[name] for name in Linking._fields)).where(_ARTICLES.c.id == sa.bindparam("article_id"))
_LINKED = _ARTICLES.update().where(_ARTICLES.c.id == sa.bindparam("article_id"))


def for_linking(session: Session, article_id: int) -> Linking | None:
    """Article ``article_id`` as stored now, or None when deleted: one Core ``SELECT`` of the
    columns the assignment reads (no ORM object: its load, and the flush of its changes, cost more
    than the statements; ``book_linked`` writes them)."""
    row = session.connection().execute(_FOR_LINKING, {"article_id": article_id}).first()
    return Linking(*row) if row is not None else None


def book_linked(session: Session, article_id: int, values: dict[str, Any]) -> None:
    """Write the outcome of linking article ``article_id``: ``values`` by column name (``story_id``,
    ``linked_at``, …), one Core ``UPDATE`` (compiled once per set of columns)."""
    session.connection().execute(_LINKED, {"article_id": article_id, **values})


class Copy(NamedTuple):
    """An earlier linked article that a new one duplicates: its id, its story, and whether it is
    itself a duplicate (``duplicate_of``) of another."""

    id: int
    story_id: int | None
    duplicate_of: int | None


_FIRST_COPY = (
    sa.select(_ARTICLES.c.id, _ARTICLES.c.story_id, _ARTICLES.c.duplicate_of)
    .where(_ARTICLES.c.content_hash == sa.bindparam("hash"), _ARTICLES.c.id != sa.bindparam("other"), _ARTICLES.c.linked_at.is_not(None))
    .order_by(_ARTICLES.c.sort_at, _ARTICLES.c.id)
    .limit(1)
)


def first_copy(session: Session, content_hash: str, article_id: int) -> Copy | None:
    """The earliest linked article (publication order, then id) other than ``article_id`` whose text
    has ``content_hash``, or None."""
    row = session.connection().execute(_FIRST_COPY, {"hash": content_hash, "other": article_id}).first()
    return Copy(*row) if row is not None else None


def copy_of(session: Session, article_id: int) -> Copy | None:
    """Article ``article_id`` as a ``Copy``, or None when it is gone."""
    row = session.execute(select(Article.id, Article.story_id, Article.duplicate_of).where(Article.id == article_id)).first()
    return Copy(*row) if row is not None else None


class Candidate(NamedTuple):
    """A near-duplicate candidate: article id, ``duplicate_of``, publication order key
    (``sort_at``) and its MinHash signature (list of ints, or None)."""

    id: int
    duplicate_of: int | None
    sort_at: datetime
    minhash: list[int] | None


_CANDIDATES = sa.select(_ARTICLES.c.id, _ARTICLES.c.duplicate_of, _ARTICLES.c.sort_at, _ARTICLES.c.minhash).where(_ARTICLES.c.id.in_(
    sa.select(_BANDS.c.article_id).where(_BANDS.c.band.in_(sa.bindparam("bands", expanding=True)), _BANDS.c.article_id != sa.bindparam("other"))
    .distinct().limit(sa.bindparam("limit"))
))


def band_candidates(session: Session, bands: list[str], article_id: int, limit: int) -> list[Candidate]:
    """Up to ``limit`` articles other than ``article_id`` that share one of the LSH ``bands``
    (``ArticleBand``), with their signatures: one ``SELECT``."""
    if not bands:
        return []
    return [Candidate(*row) for row in session.connection().execute(_CANDIDATES, {"bands": bands, "other": article_id, "limit": limit})]


def add_bands(session: Session, article_id: int, bands: list[str]) -> None:
    """Store the LSH band keys of article ``article_id`` (one Core ``INSERT`` run for all, on the
    session's connection: a statement compiled once, where a multi-row ``VALUES`` of literal rows
    was compiled at every call)."""
    if bands:
        session.connection().execute(_BANDS.insert(), [{"band": band, "article_id": article_id} for band in bands])


_OUTLETS, _FEEDS = table_of(Outlet), table_of(Feed)
_NAMED = (
    sa.select(_ARTICLES.c.outlet_id, _OUTLETS.c.domain, _ARTICLES.c.site_name, _FEEDS.c.title)
    .select_from(_ARTICLES.join(_OUTLETS, _OUTLETS.c.id == _ARTICLES.c.outlet_id).outerjoin(_FEEDS, _FEEDS.c.id == _ARTICLES.c.feed_id))
    .where(_ARTICLES.c.sort_at >= sa.bindparam("start"), _ARTICLES.c.sort_at <= sa.bindparam("end"))
    .distinct()
)


def outlets_named_between(session: Session, start: datetime, end: datetime) -> dict[int, tuple[str, set[str]]]:
    """The outlets of the articles published (``sort_at``) from ``start`` to ``end`` (UTC) → their
    domain and the names they go by there: their pages' site names and their feeds' titles."""
    rows = session.connection().execute(_NAMED, {"start": start, "end": end})
    known: dict[int, tuple[str, set[str]]] = {}
    for outlet_id, domain, site_name, feed_title in rows:
        if outlet_id is not None:
            known.setdefault(outlet_id, (domain, set()))[1].update(n for n in (site_name, feed_title) if n)
    return known


def outlets_by_labels(session: Session, labels: set[str]) -> list[tuple[int, str]]:
    """``(id, domain)`` of the outlets whose domain's first label is one of ``labels``, oldest first:
    one ``SELECT`` (``domain LIKE 'label.%' OR …``), built once per number of labels."""
    if not labels:
        return []
    query = _BY_LABELS.get(len(labels))
    if query is None:
        query = _BY_LABELS[len(labels)] = sa.select(_OUTLETS.c.id, _OUTLETS.c.domain).where(
            sa.or_(*(_OUTLETS.c.domain.like(sa.bindparam(f"label{i}")) for i in range(len(labels))))).order_by(_OUTLETS.c.id)
    patterns = {f"label{i}": f"{label}.%" for i, label in enumerate(sorted(labels))}
    return [(outlet_id, domain) for outlet_id, domain in session.connection().execute(query, patterns) if domain.split(".")[0] in labels]


_BY_LABELS: dict[int, sa.Select] = {}
"""``outlets_by_labels``'s statements by number of labels (a statement built at every call cost
more than the read: its construction and cache key)."""


def earliest_by_outlets(
    session: Session, outlet_ids: set[int], story_ids: list[int], moment: datetime, hours: float
) -> dict[int, datetime]:
    """Of ``story_ids``, those holding an article of one of ``outlet_ids`` published at or before
    ``moment`` and within ``hours`` before it → the earliest such article's publication time."""
    if not outlet_ids or not story_ids:
        return {}
    rows = session.execute(
        select(Article.story_id, sa.func.min(Article.sort_at))
        .where(col(Article.outlet_id).in_(outlet_ids), col(Article.story_id).in_(story_ids))
        .where(Article.sort_at <= moment, Article.sort_at >= moment - timedelta(hours=hours))
        .group_by(col(Article.story_id))
    ).all()
    return {sid: first for sid, first in rows if sid is not None}


def first_of_outlet(session: Session, story_id: int, outlet_id: int, other_than: int) -> int | None:
    """The id of the earliest article (publication order, then id) of outlet ``outlet_id`` in story
    ``story_id`` other than ``other_than``, or None."""
    return session.scalars(
        select(Article.id)
        .where(Article.story_id == story_id, Article.outlet_id == outlet_id, Article.id != other_than)
        .order_by(col(Article.sort_at), col(Article.id))
        .limit(1)
    ).first()


def add_citation(session: Session, article_id: int, name: str, outlet_id: int | None, cited_article_id: int | None) -> None:
    """Add a citation of article ``article_id``: the ``name`` as written, its outlet and that
    outlet's article in the story when known (flushed with the transaction)."""
    session.add(Citation(article_id=article_id, name=name, outlet_id=outlet_id, cited_article_id=cited_article_id))


def point_citations(session: Session, outlet_id: int, story_id: int, article_id: int) -> None:
    """Point the unresolved citations of outlet ``outlet_id`` made by articles of story
    ``story_id`` at article ``article_id`` (that outlet's report, just linked into the story)."""
    in_story = select(Article.id).where(Article.story_id == story_id)
    session.execute(
        sa.update(Citation)
        .where(col(Citation.outlet_id) == outlet_id, col(Citation.cited_article_id).is_(None))
        .where(col(Citation.article_id).in_(in_story))
        .values(cited_article_id=article_id)
    )


def move_members(session: Session, from_story: int, to_story: int) -> None:
    """Move every article of story ``from_story`` to story ``to_story`` (a merge)."""
    session.execute(sa.update(Article).where(col(Article.story_id) == from_story).values(story_id=to_story))


def save_story(session: Session, story: Story) -> None:
    """Write ``story`` (new or changed) within the transaction, so a new one has its id."""
    session.add(story)
    session.flush()


def delete_story(session: Session, story: Story) -> None:
    """Delete a story row (merged away; its articles moved first: ``move_members``)."""
    session.delete(story)


def give_up(session: Session, article_id: int) -> None:
    """Book article ``article_id`` as linked without a story (its lease cleared); not committed."""
    session.execute(sa.update(Article).where(col(Article.id) == article_id).values(linked_at=utcnow(), link_lease_until=None))
