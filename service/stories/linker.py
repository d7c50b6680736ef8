"""The database side of story linking: claim articles whose text is final, compute their features
in the worker pool, then, one article at a time under the story lock, link duplicates, assign the
story and record citations.

Pipeline position: after ``store.record_extraction`` / ``record_page_failure`` (or ``store_entries``
for entries without a page). ``Poller.process_pages`` calls ``Linker.link_pending`` after its pages; ``Poller.run`` runs
``Linker.run`` beside the feed and page runners.

Concurrency: feature computation (the CPU-heavy part) runs in parallel in worker processes; the
assignment step (a few indexed reads, a small numpy scoring, a few writes) runs in a transaction
that first upserts the ``story_locks`` row named ``stories``. That row lock (PostgreSQL) or write
lock (SQLite, where it is the transaction's first statement) serialises assignment across tasks,
processes and replicas, so two reports of one event that arrive at the same moment see each other
and end in one story. Claims use ``link_lease_until`` with ``FOR UPDATE SKIP LOCKED``, so no article
is linked twice.

What runs where: encoding, MinHash and attribution patterns run in the worker pool
(``link_features``). Scoring the shortlisted stories of the window (at most ``Params.top`` = 30, a
few numpy products and dictionary lookups, 1-3 ms) and decoding their stored state run on the event
loop inside the assignment transaction. That keeps the lock short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import leases, metrics
from service.config import Settings
from service.ingest.workers import WorkerPool
from service.jobs import Runner, Step
from service.models import Article, ArticleBand, Citation, ExtractionStatus, Outlet, Story, StoryLock, utcnow
from service.stories import attribution, fingerprints
from service.stories.clustering import Params, StoryState, choose, mergeable, unpack
from service.stories.features import ArticleFeatures, article_features
from service.webhooks import outbox

log = logging.getLogger(__name__)

LOCK_NAME = "stories"
# Near-duplicate candidates compared per article (articles sharing a band key).
MAX_NEAR_CANDIDATES = 50

MIN_STORY_WORDS = 3
"""Words (title and text together) an article needs to be compared with stories. With fewer — no
title and no text, or a lone word such as "js" — there is nothing to tell events apart (such items
all look alike to the encoders): the article is linked without a story."""


def link_features(title: str | None, text: str | None, lang: str | None, published: datetime | None, text_vectors: bool = True) -> ArticleFeatures:
    """``article_features`` with positional arguments, for ``WorkerPool.run`` (runs in a worker);
    ``text_vectors`` False leaves the text encoder out (``Settings.story_text_vectors``). Without
    ``lang`` (no page extracted, no language in the feed), the language is identified from the text
    (``ingest.language.identify``) and ``assign`` stores it on the article."""
    guess = None
    if lang is None and text:
        from service.ingest.language import identify

        guess = identify(text)
        lang = guess.code if guess is not None else None
    if text_vectors:
        features = article_features(title, text, lang, published)
    else:
        features = article_features(title, text, lang, published, texts=None)
    features.lang_confidence = guess.confidence if guess is not None else None
    return features


def params_from(settings: Settings) -> Params:
    """Clusterer parameters from the service settings."""
    return Params(
        threshold=settings.story_threshold, threshold_title=settings.story_threshold_title, window_hours=settings.story_window_hours
    )


@dataclass
class LinkOutcome:
    """What linking one article did."""

    article_id: int
    story_id: int | None
    new_story: bool
    duplicate_of: int | None
    similarity: float | None


async def _lock(session: AsyncSession) -> None:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(StoryLock).values(name=LOCK_NAME, counter=1)
    statement = statement.on_conflict_do_update(index_elements=["name"], set_={"counter": StoryLock.counter + 1})
    await session.exec(statement)


class Linker:
    """Links articles of one database; safe to run in several tasks and processes at once."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        workers: WorkerPool,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        """``on_events`` is called after a commit that wrote webhook deliveries."""
        self.settings = settings
        self.on_events = on_events
        self.sessions = sessions
        self.workers = workers
        self.params = params_from(settings)

    async def claim(self, limit: int) -> list[Article]:
        """Lease up to ``limit`` unlinked articles whose text is final (extraction not pending),
        oldest publication first, and commit."""
        due = [col(Article.linked_at).is_(None), Article.extraction_status != ExtractionStatus.pending]
        order = [col(Article.sort_at), col(Article.id)]
        async with self.sessions() as session:
            return await leases.claim(
                session, Article, due, order, None, self.settings.lease_seconds, limit, until_column="link_lease_until"
            )

    async def link_pending(self) -> int:
        """Link every article that is ready (``LinkStep``, two per worker process at a time) until none
        is left; returns how many got a story. Never raises for one bad article."""
        if not self.settings.stories_enabled:
            return 0
        outcomes = await Runner(LinkStep(self), self.sessions, self.settings.lease_seconds).drain()
        return sum(outcome is not None for outcome in outcomes)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, tick: float) -> None:
        """Link articles as they become ready until ``stop`` is set (woken by ``wake``, or every
        ``tick`` seconds). Does nothing with stories off."""
        if self.settings.stories_enabled:
            await Runner(LinkStep(self), self.sessions, self.settings.lease_seconds).run(stop, wake, tick)

    async def link(self, article: Article) -> LinkOutcome | None:
        """Link one claimed article: with fewer than ``MIN_STORY_WORDS`` words without a story;
        otherwise its features in the worker pool, then ``assign``."""
        if _words(article) < MIN_STORY_WORDS:
            log.info("article %s: too few words to compare, left without a story", article.id)
            await self._give_up(article.id)
            return None
        try:
            feats = await self.workers.run(
                link_features, article.title, article.text, article.language, article.sort_at, self.settings.story_text_vectors
            )
        except Exception as exc:
            feats = exc
        return await self._link_one(article, feats)

    async def _link_one(self, article: Article, feats: ArticleFeatures | BaseException) -> LinkOutcome | None:
        """``assign`` one article its features (or the error computing them); log the outcome.
        Never raises: a failed assignment is logged and the article left for its lease to expire."""
        if isinstance(feats, BaseException):
            # A text that kills or stalls the encoder would fail again: book it as linked without a
            # story rather than retrying it every lease period.
            log.warning("article %s: story features failed, left without a story: %r", article.id, feats)
            await self._give_up(article.id)
            return None
        try:
            outcome = await self.assign(article.id, feats)
        except Exception:
            log.exception("article %s: story linking failed", article.id)
            return None
        if outcome is not None:
            log.info(
                "article %s linked: story %s%s%s", outcome.article_id, outcome.story_id,
                " (new)" if outcome.new_story else "",
                f", duplicate of {outcome.duplicate_of}" if outcome.duplicate_of else "",
            )
        return outcome

    async def _give_up(self, article_id: int) -> None:
        """Book the article as linked without a story (and announce it)."""
        async with self.sessions() as session:
            await session.exec(
                sa.update(Article).where(Article.id == article_id).values(linked_at=utcnow(), link_lease_until=None)
            )
            events = await outbox.announce_articles(session, [article_id])
            await session.commit()
        self._events_written(events)

    def _events_written(self, count: int) -> None:
        if count and self.on_events is not None:
            self.on_events()

    async def assign(self, article_id: int, feats: ArticleFeatures) -> LinkOutcome | None:
        """Dedup, story and citations for one article, in one transaction under the story lock.
        Returns None when the article is gone or was linked meanwhile."""
        async with self.sessions() as session:
            await _lock(session)  # first statement: serialises story writers
            article = await session.get(Article, article_id, populate_existing=True)
            if article is None or article.linked_at is not None:
                await session.commit()
                return None
            if article.language is None and feats.lang is not None:  # identified from the feed's text (link_features)
                article.language, article.language_confidence = feats.lang, feats.lang_confidence
            duplicate, similarity = await self._duplicate(session, article, feats)
            for band in feats.bands:
                session.add(ArticleBand(band=band, article_id=article.id))
            article.minhash = feats.minhash or None
            story, score, new, grew = await self._story(session, article, feats, duplicate)
            article.duplicate_of = duplicate.id if duplicate is not None else None
            # The combiner's score is a regression, not bounded: shown clipped to its 0..1 unit.
            article.similarity = similarity if duplicate is not None else (min(1.0, max(0.0, score)) if not new else None)
            article.story_id = story.id
            article.linked_at = utcnow()
            article.link_lease_until = None
            await self._citations(session, article, feats, story)
            # Webhook events, in the transaction that links the article (transactional outbox).
            events = await outbox.announce_articles(session, [article.id])
            if new or grew:
                events += await outbox.announce_story(session, story, "story.created" if new else "story.updated", article)
            await session.commit()
            self._events_written(events)
            metrics.STORY_SIZE.observe(story.article_count)
            if new:
                metrics.STORIES_CREATED.inc()
            return LinkOutcome(article.id, story.id, new, article.duplicate_of, article.similarity)

    async def _duplicate(self, session: AsyncSession, article: Article, feats: ArticleFeatures) -> tuple[Article | None, float | None]:
        """Layer 2 (same content hash) then layer 3 (MinHash over LSH band candidates): the first
        linked copy and the similarity (1.0 for exact)."""
        if article.content_hash and article.text:
            exact = (
                select(Article)
                .where(Article.content_hash == article.content_hash, Article.id != article.id)
                .where(col(Article.linked_at).is_not(None))
                .order_by(col(Article.sort_at), col(Article.id))
                .limit(1)
            )
            found = (await session.exec(exact)).first()
            if found is not None:
                return (found if found.duplicate_of is None else await session.get(Article, found.duplicate_of) or found), 1.0
        if not feats.bands:
            return None, None
        candidates = (
            select(ArticleBand.article_id)
            .where(col(ArticleBand.band).in_(feats.bands), ArticleBand.article_id != article.id)
            .distinct()
            .limit(MAX_NEAR_CANDIDATES)
        )
        ids = list((await session.exec(candidates)).all())
        if not ids:
            return None, None
        rows = (await session.exec(select(Article).where(col(Article.id).in_(ids)))).all()
        best, best_similarity = None, 0.0
        for row in rows:
            similarity = fingerprints.jaccard(feats.minhash, row.minhash or [])
            if similarity > best_similarity or (similarity == best_similarity and best is not None and (row.sort_at, row.id) < (best.sort_at, best.id)):
                best, best_similarity = row, similarity
        if best is None or best_similarity < self.settings.near_duplicate_threshold:
            return None, None
        if best.duplicate_of is not None:
            best = await session.get(Article, best.duplicate_of) or best
        return best, round(best_similarity, 4)

    async def _story(self, session: AsyncSession, article: Article, feats: ArticleFeatures, duplicate: Article | None) -> tuple[Story, float, bool, bool]:
        """The story ``article`` joins (or starts): ``(story, score, new, grew)``, ``grew`` when the
        article brought the story a new outlet or language."""
        moment = article.sort_at
        story: Story | None = None
        score = 1.0
        window = timedelta(hours=self.params.window_hours)
        rows = (
            await session.exec(
                select(Story.id, Story.vector, Story.article_count)
                .where(Story.last_published_at >= moment - window, Story.first_published_at <= moment + window)
            )
        ).all()
        vectors = {sid: unpack(v) for sid, v, _n in rows}
        if duplicate is not None and duplicate.story_id is not None:
            story = await session.get(Story, duplicate.story_id)
        if story is None and rows:
            shortlist = [sid for sid, _v, _n in rows]
            if len(rows) > self.params.top:
                coarse = np.stack([vectors[sid] for sid in shortlist]) @ feats.vector
                shortlist = [shortlist[i] for i in np.argsort(-coarse)[: self.params.top]]
            stories = {s.id: s for s in (await session.exec(select(Story).where(col(Story.id).in_(shortlist)))).all()}
            states = [StoryState.from_record(sid, stories[sid].state) for sid in shortlist]
            outcome = choose(feats, states, self.params)
            if outcome.key is not None:
                story, score = stories[outcome.key], outcome.score
        now = utcnow()
        if story is None:
            state = StoryState.start(None, feats)
            story = Story(
                title=article.title, first_article_id=article.id, first_seen_at=moment, last_updated_at=now,
                first_published_at=moment, last_published_at=moment, article_count=0, created_at=now,
            )
            new = True
        else:
            state = StoryState.from_record(story.id, story.state)
            state.add(feats)
            new = False
        if story.article_count and moment < story.first_seen_at:
            story.first_seen_at, story.first_article_id, story.title = moment, article.id, article.title or story.title
        story.article_count += 1
        story.first_published_at = min(story.first_published_at, moment)
        story.last_published_at = max(story.last_published_at, moment)
        grew = _add_members(story, {article.language} - {None}, {article.outlet_id} - {None})
        _set_state(story, state, now)
        session.add(story)
        await session.flush()
        state.key = story.id
        others = [(sid, vectors[sid], n) for sid, _v, n in rows if sid != story.id]
        merge = mergeable(state, others, self.params)
        if merge:
            story = await self._merge(session, story, state, merge, now)
        return story, score, new, grew

    async def _merge(self, session: AsyncSession, story: Story, state: StoryState, keys: list[int], now: datetime) -> Story:
        """Merge the stories ``keys`` and ``story`` into the oldest of them (lowest id): its row
        takes the others' articles, counts, languages, outlets and state; theirs are deleted."""
        group = {story.id: story}
        for other in (await session.exec(select(Story).where(col(Story.id).in_(keys)))).all():
            group[other.id] = other
        survivor = group[min(group)]
        merged = state if survivor is story else StoryState.from_record(survivor.id, survivor.state)
        for sid, other in sorted(group.items()):
            if other is survivor:
                continue
            merged.absorb(state if other is story else StoryState.from_record(sid, other.state))
            await session.exec(sa.update(Article).where(Article.story_id == sid).values(story_id=survivor.id))
            if other.first_seen_at < survivor.first_seen_at:
                survivor.first_seen_at, survivor.first_article_id, survivor.title = other.first_seen_at, other.first_article_id, other.title
            survivor.article_count += other.article_count
            survivor.first_published_at = min(survivor.first_published_at, other.first_published_at)
            survivor.last_published_at = max(survivor.last_published_at, other.last_published_at)
            _add_members(survivor, set(other.languages), set(other.outlet_ids))
            await session.delete(other)
        _set_state(survivor, merged, now)
        session.add(survivor)
        await session.flush()
        log.info("stories %s merged into story %s", sorted(k for k in group if k != survivor.id), survivor.id)
        return survivor

    async def _citations(self, session: AsyncSession, article: Article, feats: ArticleFeatures, story: Story) -> None:
        """Layer 5: store the outlets ``article`` cites, linked to their article in ``story``; and
        point earlier citations of this article's outlet within the story at this article."""
        for name in feats.cites:
            key = attribution.name_key(name)
            if not key:
                continue
            outlet_id = await _resolve_outlet(session, key)
            if outlet_id is None and name.lower() not in attribution.AGENCIES:
                continue
            if outlet_id is not None and outlet_id == article.outlet_id:
                continue  # an outlet quoting its own earlier report
            cited = None
            if outlet_id is not None:
                cited = (
                    await session.exec(
                        select(Article.id)
                        .where(Article.story_id == story.id, Article.outlet_id == outlet_id, Article.id != article.id)
                        .order_by(col(Article.sort_at), col(Article.id))
                        .limit(1)
                    )
                ).first()
            session.add(Citation(article_id=article.id, name=name, outlet_id=outlet_id, cited_article_id=cited))
        if article.outlet_id is not None:
            in_story = select(Article.id).where(Article.story_id == story.id)
            await session.exec(
                sa.update(Citation)
                .where(Citation.outlet_id == article.outlet_id, col(Citation.cited_article_id).is_(None))
                .where(col(Citation.article_id).in_(in_story))
                .values(cited_article_id=article.id)
            )


async def _resolve_outlet(session: AsyncSession, key: str) -> int | None:
    """The outlet whose domain's first label or whose name matches ``key`` (see
    ``attribution.name_key``), e.g. ``welt`` → ``welt.de``."""
    rows = (
        await session.exec(
            select(Outlet.id, Outlet.domain, Outlet.name).where(
                sa.or_(col(Outlet.domain).like(f"{key}.%"), col(Outlet.domain).like(f"%.{key}.%"), col(Outlet.name).is_not(None))
            )
        )
    ).all()
    for outlet_id, domain, name in rows:
        labels = domain.split(".")
        if labels[0] == key or (name and attribution.name_key(name) == key):
            return outlet_id
    return None


def _add_members(story: Story, languages: set[str], outlet_ids: set[int]) -> bool:
    """Add languages and outlets to ``story``; True when one of them is new to it."""
    grew = not languages <= set(story.languages) or not outlet_ids <= set(story.outlet_ids)
    story.languages = sorted(set(story.languages) | languages)
    story.language_count = len(story.languages)
    story.outlet_ids = sorted(set(story.outlet_ids) | outlet_ids)
    story.outlet_count = len(story.outlet_ids)
    return grew


def _set_state(story: Story, state: StoryState, now: datetime) -> None:
    story.last_updated_at = now
    story.state = state.to_record()
    story.vector = np.asarray(state.centroid, dtype="<f2").tobytes()


def _words(article: Article) -> int:
    """Whitespace-separated words in the article's title and text."""
    return len(f"{article.title or ''} {article.text or ''}".split())


class LinkStep(Step[Article, LinkOutcome | None]):
    """Linking ready articles (``Linker.link``) on the leased-step runner: two articles per worker
    process in flight (their features computed in parallel; assignment serialised by the story
    lock; more would only queue in the worker pool ahead of the feed parses and page extractions), each within the runner's deadline; one that raised or overran is booked as linked without a
    story (it would fail again)."""

    name = "link"
    model = Article
    until_column = "link_lease_until"

    def __init__(self, linker: Linker) -> None:
        self.linker = linker
        self.concurrency = 2 * linker.settings.extract_workers

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[Article]:
        return await self.linker.claim(limit)

    async def handle(self, article: Article) -> LinkOutcome | None:
        return await self.linker.link(article)

    async def failed(self, article: Article, reason: str) -> None:
        log.warning("article %s: linking failed (%s), left without a story", article.id, reason)
        await self.linker._give_up(article.id)
