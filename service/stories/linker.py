"""The database side of story linking: claim articles whose text is final, compute their features
in the worker pool, then, one article at a time under the story lock, link duplicates, assign the
story and record citations.

Pipeline position: after ``articles.book_extraction`` / ``book_page_failure`` (or ``store_entries``
for entries without a page). ``Poller.process_pages`` calls ``Linker.link_pending`` after its pages; ``Poller.run`` runs
``Linker.run`` beside the feed and page runners.

Concurrency: feature computation (the CPU-heavy part) runs in worker processes, ahead of the
assignment, which one process does in claim order (``Linker.link``); the assignment step (a few indexed reads, a small numpy scoring, a few writes) runs in a transaction
that first upserts the ``story_locks`` row named ``stories``. That row lock (PostgreSQL) or write
lock (SQLite, where it is the transaction's first statement) serialises assignment across tasks,
processes and replicas, so two reports of one event that arrive at the same moment see each other
and end in one story. Claims use ``link_lease_until`` with ``FOR UPDATE SKIP LOCKED``, so no article
is linked twice.

What runs where: encoding, MinHash and attribution patterns run in the worker pool
(``link_features``). Scoring the shortlisted stories of the window (at most ``Params.top`` = 30, a
few numpy products and dictionary lookups, 1-3 ms) and decoding their stored state run inside the
assignment transaction. That keeps the lock short. The transactions (claim, the cascade's read,
the assignment, giving up) are synchronous functions run whole by the linker's ``db.Writer``: on a
SQLite file in one hand-off to its thread each, off the event loop (through aiosqlite each of
their statements was a hand-off of its own); on PostgreSQL in an async session's ``run_sync``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from service import metrics
from service.config import Settings
from service.db import Writer
from service.ingest.text import word_count
from service.ingest.workers import WorkerPool
from service.jobs import Runner, Step
from service.models import Article, Story, utcnow
from service.storage import failures
from service.storage import stories as stored
from service.stories import attribution
from service.webhooks import outbox

if TYPE_CHECKING:
    import numpy as np

    from service.stories.clustering import Params, Scores, StoryState
    from service.stories.features import ArticleFeatures

# The story stack (``clustering``, ``features``, ``fingerprints``: numpy scoring, the encoders,
# MinHash in numpy, about 10 MiB) and numpy itself (17 MiB) are imported where they are used, so a process with stories off
# (``NEWSLOOM_STORIES_ENABLED=false``), which builds a Linker that never links, never loads it.

log = logging.getLogger(__name__)

# Near-duplicate candidates compared per article (articles sharing a band key).
MAX_NEAR_CANDIDATES = 50

BACKFILL_MEMBERS = 3
"""Articles of a story without a text vector whose text vectors the cascade computes for it."""

AHEAD_NEAREST = 5
"""Articles waiting for their turn (or prefetched) that ``Linker._near`` compares an article with."""

PREFETCH = 8
"""Articles per worker process that ``LinkStep`` keeps in flight: their features computed ahead
while earlier ones are assigned (about 20 ms of a worker each)."""

KEPT = 1024
"""Computations a ``Linker`` holds for later use, each kind: the ``prefetch`` of articles not yet
linked (an article linked by another process never takes its own), text vectors by article
(``_text_vector``), and stories of one article (``_alone``); the oldest are dropped beyond this many."""

MIN_STORY_WORDS = 3
"""Words (title and text together) an article needs to be compared with stories. With fewer — no
title and no text, or a lone word such as "js" — there is nothing to tell events apart (such items
all look alike to the encoders): the article is linked without a story."""


def link_features(title: str | None, text: str | None, lang: str | None, published: datetime | None, text_vectors: bool = True) -> ArticleFeatures:
    """``article_features`` with positional arguments, for ``WorkerPool.run`` (runs in a worker);
    ``text_vectors`` False leaves the text encoder out (``Settings.story_text_vectors``). Without
    ``lang`` (no page extracted, no language in the feed), the language is identified from the text
    (``ingest.language.identify``) and ``assign`` stores it on the article."""
    from service.stories.features import article_features

    guess = None
    if lang is None and text:
        from service.ingest.pages.language import identify

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
    from service.stories.clustering import Params

    return Params(
        threshold=settings.story_threshold, threshold_title=settings.story_threshold_title, window_hours=settings.story_window_hours
    )


@dataclass
class Window:
    """The stories of an article's window as ``Linker._window`` read them: the article's time
    (``sort_at``), all of them (in id order), their unit centroids (float32, one row each, in that
    order), the ``Params.top`` nearest, and ``after``: the story lock's counter after this linker's
    last assignment when the read began (None before its first).
    ``assign`` takes these rows as they are when its lock's counter is ``after`` + 1 (no story
    written since they were read) and the article's time is the same."""

    moment: datetime
    rows: list[stored.WindowStory]
    vectors: np.ndarray
    nearest: list[stored.WindowStory]
    after: int | None


@dataclass
class Judgement:
    """The cascade's judgement of one article (``Linker._undecided``): the features judged, the
    stories it was judged against (id and ``WindowStory.version`` of each), whether its text vector
    can change the decision, (story id, article id, title, text, language) of the members of
    the near stories without a text vector, whose text vectors are to be computed, the window
    read for this judgement, and the article's scores against stories (``clustering.Scores``:
    kept from its judgement before its turn to the one at its turn and its assignment)."""

    feats: ArticleFeatures
    seen: tuple
    need: bool
    members: list[tuple[int, int, str | None, str | None, str | None]]
    window: Window
    scores: Scores


@dataclass
class LinkOutcome:
    """What linking one article did."""

    article_id: int
    story_id: int | None
    new_story: bool
    duplicate_of: int | None
    similarity: float | None


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
        self._turn = asyncio.Lock()  # FIFO: articles are assigned in the order their ``link`` began
        self._ahead: OrderedDict[int, tuple[tuple, asyncio.Future]] = OrderedDict()  # ``prefetch``, by article id
        self._computed = _Prefetched()  # the ones of ``_ahead`` whose features are computed, with text
        self._vectors: OrderedDict[tuple[int, str | None], asyncio.Future] = OrderedDict()  # ``_text_vector``
        self._waiting: OrderedDict[int, tuple[stored.Unlinked, asyncio.Future]] = OrderedDict()  # ``link``s begun, in turn order
        self._singles: OrderedDict[int, tuple[ArticleFeatures, StoryState]] = OrderedDict()  # ``_alone``, by article id
        self.spare: WorkerPool | None = None
        """A second pool that text vectors may go to when it is less busy (``Poller``: the
        extraction pool, idle once the pages are done)."""
        self._counter: int | None = None  # the story lock's counter after this linker's last assignment
        self.writer = Writer(sessions)
        """Runs each claim, judgement read and assignment as one transaction of synchronous
        functions: on a SQLite file one hand-off to its thread (through aiosqlite every statement
        was one, about 100 an article), elsewhere an async session's ``run_sync``."""

    @cached_property
    def params(self) -> Params:
        """The clusterer parameters (``params_from`` the settings), made on first use."""
        return params_from(self.settings)

    @cached_property
    def states(self) -> stored.StateCache[StoryState]:
        """Decoded story states (``StoryState``) kept between articles while their stories are
        unchanged (``storage.stories.StateCache``), made on first use."""
        from service.stories.clustering import StoryState

        return stored.StateCache(StoryState.from_record)

    def _window(self, session: Session, moment: datetime, feats: ArticleFeatures) -> Window:
        """The stories of the window of an article published at ``moment`` with ``feats``
        (``storage.stories.window``, in id order), and the
        ``Params.top`` of them nearest to its title + lead vector by centroid cosine, nearest
        first (all of them, in id order, when there are no more). The centroids are decoded in one
        call (``clustering.unpack``: little-endian float16 to float32)."""
        import numpy as np

        from service.stories.clustering import unpack

        after = self._counter  # before the read: a story written meanwhile moves the counter past after + 1
        rows = stored.window(session, moment, self.params.window_hours)
        width = len(feats.vector)
        vectors = unpack(b"".join(row.vector for row in rows)).reshape(len(rows), width)
        if len(rows) <= self.params.top:
            return Window(moment, rows, vectors, rows, after)
        coarse = vectors @ feats.vector
        return Window(moment, rows, vectors, [rows[j] for j in np.argsort(-coarse)[: self.params.top]], after)

    async def claim(self, limit: int) -> list[stored.Unlinked]:
        """Lease up to ``limit`` unlinked articles whose text is final (extraction not pending),
        oldest publication first, and commit (one transaction on ``writer``)."""
        return await self.writer.run(stored.claim_unlinked, self.settings.lease_seconds, limit)

    async def link_pending(self) -> int:
        """Link every article that is ready (``LinkStep``: in claim order, ``PREFETCH`` per worker
        process in flight) until none is left; returns how many got a story. Never raises for one bad article."""
        if not self.settings.stories_enabled:
            return 0
        outcomes = await Runner(LinkStep(self), self.sessions, self.settings.lease_seconds).drain()
        return sum(outcome is not None for outcome in outcomes)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, tick: float) -> None:
        """Link articles as they become ready until ``stop`` is set (woken by ``wake``, or every
        ``tick`` seconds). Does nothing with stories off."""
        if self.settings.stories_enabled:
            await Runner(LinkStep(self), self.sessions, self.settings.lease_seconds).run(stop, wake, tick)

    def prefetch(self, article: Article) -> None:
        """Start computing, in the worker pool, the story features but the text vector of an
        article whose text just became final, for its ``link`` to take (with stories on): so they
        are computed while later pages are extracted (``Poller.process_pages`` links after the last
        page, in claim order). ``link`` takes them only if the article's title, text, language and
        time are still the same; ``KEPT`` articles at most are held. Once they are computed, the
        text vectors of the article and of the prefetched articles its cascade judges near are
        started too (``_near``: they are likely to be asked for when it is linked)."""
        if not self.settings.stories_enabled or _words(article) < MIN_STORY_WORDS:
            return
        inputs = _feature_inputs(article)
        future = asyncio.ensure_future(self.workers.run(link_features, *inputs, False))
        future.add_done_callback(_retrieve)
        if self.settings.story_text_vectors:
            future.add_done_callback(lambda done: self._guess_prefetched(article.id, inputs, done))
        self._computed.remove(article.id)
        self._ahead[article.id] = (inputs, future)
        for dropped in _bound(self._ahead):
            self._computed.remove(dropped)

    def _guess_prefetched(self, article_id: int, inputs: tuple, done: asyncio.Future) -> None:
        """``prefetch``'s guess: start the text vectors of article ``article_id`` (its
        ``_feature_inputs`` and computed features ``done``) and of the prefetched articles near it."""
        from service.stories.features import ArticleFeatures

        feats = None if done.cancelled() or done.exception() is not None else done.result()
        kept = self._ahead.get(article_id)
        if not isinstance(feats, ArticleFeatures) or not feats.has_text or kept is None or kept[1] is not done:
            return  # no text, or already taken by its ``link``
        title, text, _lang, moment = inputs
        found = self._computed.nearest(feats.vector, _as_utc(moment).timestamp(), self.params.window_hours * 3600)
        self._computed.add(article_id, title, text, moment, feats)
        near = self._cascade_near(feats, found)
        if near:
            self._text_vector(article_id, title, text, feats.lang, spare=False)
        for aid, other_title, other_text, other_feats in near:
            self._text_vector(aid, other_title, other_text, other_feats.lang, spare=False)

    def _first_features(self, article: stored.Unlinked) -> asyncio.Future:
        """``link_features`` without the text vector for ``article``, in the worker pool: its
        ``prefetch`` when the inputs are unchanged, else a new computation."""
        inputs = _feature_inputs(article)
        kept = self._ahead.pop(article.id, None)
        self._computed.remove(article.id)
        if kept is not None and kept[0] == inputs and not kept[1].cancelled():
            return kept[1]
        if kept is not None:
            kept[1].cancel()
        return asyncio.ensure_future(self.workers.run(link_features, *inputs, False))

    def _text_vector(
        self, article_id: int, title: str | None, text: str | None, lang: str | None, spare: bool = True, member: bool = False
    ) -> asyncio.Future:
        """``features.text_vector`` of article ``article_id`` in ``lang``, computed once (``KEPT``
        held) in the less busy of the worker pool and ``spare`` (only in the worker pool when
        ``spare`` is False: a guess made while pages are extracted must not delay them): ``link``
        starts the ones its article's cascade asks for before its turn (``_speculate``),
        ``_features`` takes them. ``member``: ``title`` and ``text`` are a story member's stored
        ones (``storage.stories.first_members``), prepared as at ingest (``from_row``)."""
        key = (article_id, lang)
        future = self._vectors.get(key)
        if future is not None and not future.cancelled() and not (future.done() and future.exception() is not None):
            self._vectors.move_to_end(key)
            return future
        from service.stories.features import text_vector

        pools = (self.workers, self.spare) if spare and self.spare is not None else (self.workers,)
        pool = min(pools, key=lambda p: p.queued / p.workers)
        future = asyncio.ensure_future(pool.run(text_vector, title, text, lang, member))
        future.add_done_callback(_retrieve)
        self._vectors[key] = future
        _bound(self._vectors)
        return future

    async def _speculate(self, article: stored.Unlinked, first: asyncio.Future) -> Judgement | None:
        """Before ``article``'s turn: start the text vectors its cascade (``_undecided``) asks for
        against the stories as they are now, so that the worker pool computes them while the
        articles before it are assigned; returns that judgement (None for an article the cascade
        does not judge). Its turn judges again on the stories then, reusing this judgement where
        none of them changed (the decisions do not depend on this); a vector asked for only then
        is computed then."""
        from service.stories.features import ArticleFeatures

        feats = await asyncio.shield(first)
        if not isinstance(feats, ArticleFeatures) or not feats.has_text:
            return None
        judgement = await self._undecided(article, feats)
        ahead = self._near(feats, article.sort_at, self._waiting_before(article.id))
        if judgement.need or ahead:
            self._text_vector(article.id, article.title, article.text, feats.lang)
        for _sid, aid, title, text, lang in judgement.members:
            self._text_vector(aid, title, text, lang, member=True)
        for aid, title, text, other in ahead:
            self._text_vector(aid, title, text, other.lang)
        return judgement

    def _near(
        self, feats: ArticleFeatures, moment: datetime,
        others: Iterable[tuple[int, str | None, str | None, datetime, asyncio.Future]],
    ) -> list[tuple[int, str | None, str | None, ArticleFeatures]]:
        """Of ``others`` (article id, title, text, time, future of its ``link_features``), those
        whose features are computed, within the window of an article with ``feats`` published at
        ``moment`` and judged near it by its cascade (``_cascade_near``; the ``AHEAD_NEAREST``
        nearest by title + lead vector): (id, title, text, features). A guess of the text vectors
        its turn will ask for: the stories it will be judged against may hold them (``_speculate``;
        ``prefetch`` asks ``_Prefetched.nearest`` instead, its others being many)."""
        import numpy as np

        from service.stories.features import ArticleFeatures

        window = self.params.window_hours * 3600
        at = _as_utc(moment).timestamp()
        found: list[tuple[int, str | None, str | None, ArticleFeatures]] = []
        for aid, title, text, published, future in others:
            if future.done() and not future.cancelled() and future.exception() is None:
                other = future.result()
                if isinstance(other, ArticleFeatures) and other.has_text and abs(_as_utc(published).timestamp() - at) <= window:
                    found.append((aid, title, text, other))
        if len(found) > AHEAD_NEAREST:
            coarse = np.stack([other.vector for *_rest, other in found]) @ feats.vector
            found = [found[j] for j in np.argsort(-coarse)[:AHEAD_NEAREST]]
        return self._cascade_near(feats, found)

    def _cascade_near(
        self, feats: ArticleFeatures, found: list[tuple[int, str | None, str | None, ArticleFeatures]]
    ) -> list[tuple[int, str | None, str | None, ArticleFeatures]]:
        """Those of ``found`` (article id, title, text, features) whose decision the text vector of
        an article with ``feats`` can change, each taken as a story of one
        (``clustering.cascade_near``)."""
        from service.stories.clustering import cascade_near

        if not found:
            return []
        near = set(cascade_near(feats, [self._alone(aid, other) for aid, *_rest, other in found], self.params))
        return [entry for entry in found if entry[0] in near]

    def _alone(self, article_id: int, feats: ArticleFeatures) -> StoryState:
        """A story holding just article ``article_id`` with ``feats`` (key: the article id), made
        once for these features (``KEPT`` held): an article waiting for its turn is compared so
        with each of the few articles after it (``_near``), and its cached state keeps its
        centroid and exemplar matrix (``StoryState._derive``) between them."""
        from service.stories.clustering import StoryState

        kept = self._singles.get(article_id)
        if kept is not None and kept[0] is feats:
            return kept[1]
        state = StoryState.start(article_id, feats)
        self._singles[article_id] = (feats, state)
        while len(self._singles) > KEPT:
            self._singles.popitem(last=False)
        return state

    def _waiting_before(self, article_id: int) -> list[tuple[int, str | None, str | None, datetime, asyncio.Future]]:
        """The articles whose ``link`` began before article ``article_id``'s and that wait for
        their turn (for ``_near``)."""
        before = []
        for aid, (other, future) in self._waiting.items():
            if aid == article_id:
                break
            before.append((aid, other.title, other.text, other.sort_at, future))
        return before

    async def link(self, article: stored.Unlinked) -> LinkOutcome | None:
        """Link one claimed article: with fewer than ``MIN_STORY_WORDS`` words without a story;
        otherwise its features in the worker pool (``_features``: the text vector only where it can
        change the decision), then ``assign``. Articles are linked in the order their ``link`` calls
        began (the runner's claim order, oldest publication first): each one's features but the
        text vector are computed at once (or were: ``prefetch``), in the worker pool, while those
        before it are assigned;
        the rest waits for its turn."""
        if _words(article) < MIN_STORY_WORDS:
            log.info("article %s: too few words to compare, left without a story", article.id)
            await self._give_up(article.id)
            return None
        first = self._first_features(article)
        self._waiting[article.id] = (article, first)
        ahead = asyncio.ensure_future(self._speculate(article, first)) if self.settings.story_text_vectors else None
        try:
            async with self._turn:
                guess = None
                if ahead is not None:
                    guessed = (await asyncio.gather(ahead, return_exceptions=True))[0]  # a failed guess only costs time
                    guess = guessed if isinstance(guessed, Judgement) else None
                feats = (await asyncio.gather(first, return_exceptions=True))[0]
                feats, backfill, judgement = await self._features(article, feats, guess)
                return await self._link_one(article, feats, backfill, judgement)
        finally:
            self._waiting.pop(article.id, None)
            self._singles.pop(article.id, None)  # its turn is over: no later article waits behind it
            first.cancel()  # no-op once done; else (cancelled while waiting its turn) frees the pool
            if ahead is not None:
                ahead.cancel()

    async def _features(
        self, article: stored.Unlinked, feats: ArticleFeatures | BaseException, guess: Judgement | None = None
    ) -> tuple[ArticleFeatures | BaseException, dict[int, np.ndarray], Judgement | None]:
        """Story features of ``article`` (or the error computing them), in the worker pool, as a
        cascade: ``feats`` is everything but the text vector (``link_features`` without it;
        the e5 encoder is about 90 % of the cost), or the error computing it; then text vectors
        only where they can change a decision (``_undecided``; ``guess``: ``_speculate``'s
        judgement): for the article, and for the stories near its threshold that have none yet
        (from up to ``BACKFILL_MEMBERS`` of their articles), all at once so that every worker is
        busy (each computed once, and perhaps already started by ``_speculate``:
        ``_text_vector``). Returns the features and the backfilled text sums by story id (for
        ``assign``), and the judgement (None when the cascade did not judge: ``assign`` reads the
        window). Without ``Settings.story_text_vectors`` the second step is skipped."""
        import numpy as np

        from service.stories.features import ArticleFeatures

        if not self.settings.story_text_vectors or not isinstance(feats, ArticleFeatures) or not feats.has_text:
            return feats, {}, None
        judgement = await self._undecided(article, feats, guess)
        jobs = [self._text_vector(article.id, article.title, article.text, feats.lang)] if judgement.need else []
        jobs += [self._text_vector(aid, t, x, lang, member=True) for _sid, aid, t, x, lang in judgement.members]
        vectors = await asyncio.gather(*jobs, return_exceptions=True)
        found: ArticleFeatures | BaseException = feats
        if judgement.need:
            vector = vectors[0]
            if isinstance(vector, BaseException):
                found = vector
            else:
                feats.text_vector = vector
        backfill: dict[int, np.ndarray] = {}
        for (sid, _aid, _t, _x, _lang), vector in zip(judgement.members, vectors[len(jobs) - len(judgement.members):], strict=True):
            if isinstance(vector, np.ndarray):
                backfill[sid] = backfill[sid] + vector if sid in backfill else vector.astype(np.float32)
        log.debug("article %s: %d text vectors for it, %d for stories", article.id, int(judgement.need), len(judgement.members))
        return found, backfill, judgement

    async def _undecided(self, article: stored.Unlinked, feats: ArticleFeatures, guess: Judgement | None = None) -> Judgement:
        """Whether the text vector of ``article`` (with body text) can change its decision, judged
        without it (``clustering.cascade_near``) against the stories of its window, read without
        the story lock, and the members of the near stories that have no text vector yet. ``guess``
        (an earlier judgement of the same features) is returned as it is when the stories it saw
        are unchanged (``storage.stories.WindowStory.version``). One read transaction on ``writer``
        (``_judge``)."""
        return await self.writer.run(self._judge, article, feats, guess)

    def _judge(self, session: Session, article: stored.Unlinked, feats: ArticleFeatures, guess: Judgement | None) -> Judgement:
        """``_undecided``'s reads and judgement, in ``session``."""
        from service.stories.clustering import Scores, cascade_near

        window = self._window(session, article.sort_at, feats)
        seen = tuple((row.id, row.version) for row in window.nearest)
        if guess is not None and guess.feats is feats and guess.seen == seen:
            return dataclasses.replace(guess, window=window)
        scores = guess.scores if guess is not None and guess.feats is feats else Scores(feats, self.params)
        states = self.states.states(session, window.nearest)
        near = cascade_near(feats, list(states.values()), self.params, scores)
        members: list[tuple[int, int, str | None, str | None, str | None]] = []
        for key in near:
            if states[key].text_sum is None:
                found = stored.first_members(session, key, BACKFILL_MEMBERS)
                members += [(key, aid, title, text, lang) for aid, title, text, lang in found]
        return Judgement(feats, seen, bool(near), members, window, scores)

    async def _link_one(
        self, article: stored.Unlinked, feats: ArticleFeatures | BaseException, backfill: dict[int, np.ndarray], judgement: Judgement | None = None
    ) -> LinkOutcome | None:
        """``assign`` one article its features (or the error computing them), with the window its
        cascade read and its scores (``_features``' judgement); log the outcome.
        Never raises: a failed assignment is logged and booked (``service.storage.failures``) and the article
        left for its lease to expire; one that failed the same way ``failures.GIVE_UP_AFTER`` times is
        booked as linked without a story."""
        if isinstance(feats, BaseException):
            # A text that kills or stalls the encoder would fail again: book it as linked without a
            # story rather than retrying it every lease period.
            log.warning("article %s: story features failed, left without a story: %r", article.id, feats)
            await self._give_up(article.id)
            return None
        try:
            window, scores = (judgement.window, judgement.scores) if judgement is not None else (None, None)
            outcome = await self.assign(article.id, feats, backfill, window, scores)
        except Exception as exc:
            log.exception("article %s: story linking failed", article.id)
            if await failures.record(self.sessions, "link", article.id, failures.describe(exc)):
                log.warning("article %s: story linking keeps failing the same way, left without a story", article.id)
                await self._give_up(article.id)
            return None
        if outcome is not None:
            log.info(
                "article %s linked: story %s%s%s", outcome.article_id, outcome.story_id,
                " (new)" if outcome.new_story else "",
                f", duplicate of {outcome.duplicate_of}" if outcome.duplicate_of else "",
            )
        return outcome

    async def _give_up(self, article_id: int) -> None:
        """Book the article as linked without a story (and announce it), in one transaction on
        ``writer``."""
        self._events_written(await self.writer.run(_book_unlinked, article_id))

    def _events_written(self, count: int) -> None:
        if count and self.on_events is not None:
            self.on_events()

    async def assign(
        self, article_id: int, feats: ArticleFeatures, backfill: dict[int, np.ndarray] | None = None, window: Window | None = None,
        scores: Scores | None = None,
    ) -> LinkOutcome | None:
        """Dedup, story and citations for one article, in one transaction under the story lock.
        ``backfill``: text vector sums for stories that have none (``_features``), taken into their
        state when they are scored. ``window``: the stories of its window read before the lock
        (``_features``), taken when no story was written since (``Window``), else read again.
        ``scores``: the article's scores kept by its judgement (``clustering.Scores``, for ``feats``).
        Returns None when the article is gone or was linked meanwhile. The transaction runs on
        ``writer`` (``_assign``: on a SQLite file one hand-off to its thread)."""
        counter, outcome, events, size = await self.writer.run(self._assign, article_id, feats, backfill or {}, window, scores)
        self._counter = counter
        self._events_written(events)
        if outcome is not None:
            metrics.STORY_SIZE.observe(size)
            if outcome.new_story:
                metrics.STORIES_CREATED.inc()
        return outcome

    def _assign(
        self, session: Session, article_id: int, feats: ArticleFeatures, backfill: dict[int, np.ndarray], window: Window | None,
        scores: Scores | None = None,
    ) -> tuple[int, LinkOutcome | None, int, int]:
        """``assign``'s transaction in ``session`` (not committed): the story lock's counter, the
        outcome (None when the article is gone or linked), the deliveries written and the size of
        the article's story."""
        counter = stored.lock(session)  # first statement: serialises story writers
        article = stored.for_linking(session, article_id)
        if article is None or article.linked_at is not None:
            return counter, None, 0, 0
        if window is not None and (window.after is None or counter != window.after + 1 or window.moment != article.sort_at):
            window = None
        identified = {}
        if article.language is None and feats.lang is not None:  # identified from the feed's text (link_features)
            article = article._replace(language=feats.lang)
            identified = {"language": feats.lang, "language_confidence": feats.lang_confidence}
        duplicate, similarity = self._duplicate(session, article, feats)
        stored.add_bands(session, article.id, feats.bands)
        cites = self._resolve_cites(session, article, feats)
        story, score, new, grew, merged = self._story(session, article, feats, cites, duplicate, backfill, window, scores)
        duplicate_of = duplicate.id if duplicate is not None else None
        # The combiner's score is a regression, not bounded: shown clipped to its 0..1 unit.
        similarity = similarity if duplicate is not None else (min(1.0, max(0.0, score)) if not new else None)
        # Before the citations: they read the article's story (``first_of_outlet``, ``point_citations``).
        stored.book_linked(session, article.id, {
            "story_id": story.id, "duplicate_of": duplicate_of, "similarity": similarity, "minhash": feats.minhash or None,
            "linked_at": utcnow(), "link_lease_until": None, **identified,
        })
        self._citations(session, article, cites, story, alone=new and not merged)
        # Webhook events, in the transaction that links the article (transactional outbox).
        change = "story.created" if new else "story.updated" if grew else None
        events = outbox.announce_linked(session, article.id, story, change, merged)
        outcome = LinkOutcome(article.id, story.id, new, duplicate_of, similarity)
        # The story's state as written here, kept for the next articles' judgements (``states``), so the one
        # story each assignment changes is not read back and decoded again: decoded from the record written
        # (float16 exemplars, truncated counts: not the object grown here), under the version the row now has.
        # A transaction that does not commit leaves a version no row has, so the state is never taken.
        self.states.keep(story.id, (story.last_updated_at, story.article_count), self.states.decode(story.id, dict(story.state)))
        return counter, outcome, events, story.article_count

    def _duplicate(self, session: Session, article: stored.Linking, feats: ArticleFeatures) -> tuple[stored.Copy | None, float | None]:
        """Layer 2 (same content hash) then layer 3 (MinHash over LSH band candidates): the first
        linked copy and the similarity (1.0 for exact)."""
        from service.stories import fingerprints

        if article.content_hash and article.text:
            found = stored.first_copy(session, article.content_hash, article.id)
            if found is not None:
                return (found if found.duplicate_of is None else stored.copy_of(session, found.duplicate_of) or found), 1.0
        if not feats.bands:
            return None, None
        best, best_similarity = None, 0.0
        for row in stored.band_candidates(session, feats.bands, article.id, MAX_NEAR_CANDIDATES):
            similarity = fingerprints.jaccard(feats.minhash, row.minhash or [])
            if similarity > best_similarity or (similarity == best_similarity and best is not None and (row.sort_at, row.id) < (best.sort_at, best.id)):
                best, best_similarity = row, similarity
        if best is None or best_similarity < self.settings.near_duplicate_threshold:
            return None, None
        first = stored.copy_of(session, best.duplicate_of) if best.duplicate_of is not None else None
        return first or stored.copy_of(session, best.id), round(best_similarity, 4)

    def _resolve_cites(self, session: Session, article: stored.Linking, feats: ArticleFeatures) -> list[tuple[str, int | None]]:
        """The names ``feats`` cites with the outlet each refers to (``attribution.refers_to``;
        None when none does), in order: first among the outlets of the articles of the window
        before ``article`` (by their domains, site names and feed titles), else any outlet whose
        domain's first label the name spells."""
        if not feats.cites:
            return []
        moment = article.sort_at
        window = stored.outlets_named_between(session, moment - timedelta(hours=self.params.window_hours), moment)
        resolved: list[tuple[str, int | None]] = []
        for name in feats.cites:
            outlet_id = next((oid for oid, (domain, names) in sorted(window.items())
                              if attribution.refers_to(name, domain, sorted(names))), None)
            if outlet_id is None:
                labelled = stored.outlets_by_labels(session, attribution.domain_labels(name))
                outlet_id = next((oid for oid, domain in labelled if attribution.refers_to(name, domain, [])), None)
            resolved.append((name, outlet_id))
        return resolved

    def _story(
        self, session: Session, article: stored.Linking, feats: ArticleFeatures, cites: list[tuple[str, int | None]],
        duplicate: stored.Copy | None, backfill: dict[int, np.ndarray], window: Window | None = None,
        scores: Scores | None = None,
    ) -> tuple[Story, float, bool, bool, list[int]]:
        """The story ``article`` joins (or starts): ``(story, score, new, grew, merged)``, ``grew``
        when the article brought the story a new outlet or language, ``merged`` the ids of the
        stories merged into it meanwhile. ``cites``: ``_resolve_cites``; ``window``: its window's
        stories as they are now (None: read here); ``scores``: its judgement's (``Judgement``)."""
        from service.stories.clustering import StoryState, choose, merge_supported, mergeable

        moment = article.sort_at
        story: Story | None = None
        score = 1.0
        window = window or self._window(session, moment, feats)
        rows, nearest = window.rows, window.nearest
        bridged: list[int] = []
        if duplicate is not None and duplicate.story_id is not None:
            story = stored.story(session, duplicate.story_id)
        if story is None and rows:
            cited = self._cited_stories(session, article, cites, [row.id for row in rows])
            shortlist = nearest + [row for row in rows if row.id in cited and row not in nearest]
            found = self.states.states(session, shortlist)
            states = [_backfilled(found[row.id], backfill) for row in shortlist]
            outcome = choose(feats, states, self.params, cited, scores)
            if outcome.key is not None:
                story, score, bridged = stored.story(session, outcome.key), outcome.score, outcome.bridged
                if outcome.evidence == "citation":
                    log.info("article %s joins story %s on citation evidence (score %.3f)%s", article.id, outcome.key, score,
                             f", bridging stories {bridged}" if bridged else "")
        now = utcnow()
        if story is None:
            state = StoryState.start(None, feats)
            story = Story(
                title=article.title, first_article_id=article.id, first_seen_at=moment, last_updated_at=now,
                first_published_at=moment, last_published_at=moment, article_count=0, created_at=now,
            )
            new = True
        else:
            state = _backfilled(StoryState.from_record(story.id, story.state), backfill)
            state.add(feats)
            new = False
        if story.article_count and moment < story.first_seen_at:
            story.first_seen_at, story.first_article_id, story.title = moment, article.id, article.title or story.title
        story.article_count += 1
        story.first_published_at = min(story.first_published_at, moment)
        story.last_published_at = max(story.last_published_at, moment)
        grew = _add_members(story, {article.language} if article.language is not None else set(),
                            {article.outlet_id} if article.outlet_id is not None else set())
        _set_state(story, state, now)
        stored.save_story(session, story)
        state.key = story.id
        others = [(row.id, window.vectors[i], row.article_count) for i, row in enumerate(rows) if row.id != story.id]
        close = set(mergeable(state, others, self.params))
        if close:
            found = self.states.states(session, [row for row in rows if row.id in close])
            close = {key for key in close if key in found and merge_supported(state, found[key])}
        merge = sorted(close | set(bridged))
        merged: list[int] = []
        if merge:
            story, gained, merged = self._merge(session, story, state, merge, now)
            grew = grew or gained
        return story, score, new, grew, merged

    def _cited_stories(
        self, session: Session, article: stored.Linking, cites: list[tuple[str, int | None]], story_ids: list[int]
    ) -> dict[int, float]:
        """Citation evidence for ``clustering.choose``: of ``story_ids``, those holding an article
        of an outlet ``article`` cites (``cites``: ``_resolve_cites``; not its own outlet),
        published before it within the window → that earliest article's POSIX time."""
        outlets = {outlet_id for _name, outlet_id in cites if outlet_id is not None and outlet_id != article.outlet_id}
        found = stored.earliest_by_outlets(session, outlets, story_ids, article.sort_at, self.params.window_hours)
        return {sid: _as_utc(first).timestamp() for sid, first in found.items()}

    def _merge(
        self, session: Session, story: Story, state: StoryState, keys: list[int], now: datetime
    ) -> tuple[Story, bool, list[int]]:
        """Merge the stories ``keys`` and ``story`` into the oldest of them (lowest id): its row
        takes the others' articles, counts, languages, outlets and state; theirs are deleted.
        Returns the survivor, whether the merge brought it a language or an outlet it lacked, and
        the ids of the stories merged into it."""
        from service.stories.clustering import StoryState

        group = {story.id: story}
        for other in stored.stories(session, keys):
            group[other.id] = other
        survivor = group[min(group)]
        merged = state if survivor is story else StoryState.from_record(survivor.id, survivor.state)
        gained = False
        for sid, other in sorted(group.items()):
            if other is survivor:
                continue
            merged.absorb(state if other is story else StoryState.from_record(sid, other.state))
            stored.move_members(session, sid, survivor.id)
            if other.first_seen_at < survivor.first_seen_at:
                survivor.first_seen_at, survivor.first_article_id, survivor.title = other.first_seen_at, other.first_article_id, other.title
            survivor.article_count += other.article_count
            survivor.first_published_at = min(survivor.first_published_at, other.first_published_at)
            survivor.last_published_at = max(survivor.last_published_at, other.last_published_at)
            gained = _add_members(survivor, set(other.languages), set(other.outlet_ids)) or gained
            stored.delete_story(session, other)
        _set_state(survivor, merged, now)
        stored.save_story(session, survivor)
        log.info("stories %s merged into story %s", sorted(k for k in group if k != survivor.id), survivor.id)
        return survivor, gained, sorted(k for k in group if k != survivor.id)

    def _citations(
        self, session: Session, article: stored.Linking, cites: list[tuple[str, int | None]], story: Story, alone: bool
    ) -> None:
        """Layer 5: store the outlets ``article`` cites (``cites``: ``_resolve_cites``), linked to
        their article in ``story``; and point earlier citations of this article's outlet within
        the story at this article (none when ``alone``: the story is new and holds it alone)."""
        for name, outlet_id in cites:
            if outlet_id is None and name.lower() not in attribution.AGENCIES:
                continue
            if outlet_id is not None and outlet_id == article.outlet_id:
                continue  # an outlet quoting its own earlier report
            cited = stored.first_of_outlet(session, story.id, outlet_id, article.id) if outlet_id is not None and not alone else None
            stored.add_citation(session, article.id, name, outlet_id, cited)
        if article.outlet_id is not None and not alone:
            stored.point_citations(session, article.outlet_id, story.id, article.id)


def _book_unlinked(session: Session, article_id: int) -> int:
    """Book article ``article_id`` as linked without a story and write its ``article.created``
    deliveries (not committed); returns how many were written."""
    stored.give_up(session, article_id)
    return outbox.announce_articles(session, [article_id])


def _add_members(story: Story, languages: set[str], outlet_ids: set[int]) -> bool:
    """Add languages and outlets to ``story``; True when one of them is new to it."""
    grew = not languages <= set(story.languages) or not outlet_ids <= set(story.outlet_ids)
    story.languages = sorted(set(story.languages) | languages)
    story.language_count = len(story.languages)
    story.outlet_ids = sorted(set(story.outlet_ids) | outlet_ids)
    story.outlet_count = len(story.outlet_ids)
    return grew


def _set_state(story: Story, state: StoryState, now: datetime) -> None:
    import numpy as np

    story.last_updated_at = now
    story.state = state.to_record()
    story.vector = np.asarray(state.centroid, dtype="<f2").tobytes()


def _backfilled(state: StoryState, backfill: dict[int, np.ndarray]) -> StoryState:
    """``state``, or a copy of it with the text sum computed for it by the cascade if it had none
    (``state`` itself is not changed: it may be a cached one, ``Linker.states``)."""
    if state.text_sum is None and state.key in backfill:
        return dataclasses.replace(state, text_sum=backfill[state.key])
    return state


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _feature_inputs(article: Article | stored.Unlinked) -> tuple:
    """``link_features``'s first inputs from ``article``: title, text, language, time (UTC)."""
    return article.title, article.text, article.language, _as_utc(article.sort_at)


def _bound(kept: OrderedDict) -> list:
    """Drop the oldest entries of ``kept`` (futures, or tuples ending in one) beyond ``KEPT``,
    cancelling their computations; returns their keys."""
    dropped = []
    while len(kept) > KEPT:
        key, value = kept.popitem(last=False)
        (value[-1] if isinstance(value, tuple) else value).cancel()
        dropped.append(key)
    return dropped


class _Prefetched:
    """The prefetched articles whose features are computed and have text (``Linker.prefetch``), as
    rows of one matrix of title + lead vectors with their times (POSIX seconds), so that
    ``nearest`` ranks all of them with one product: the Python pass and the stacking of every
    other prefetched article per article (quadratic in the articles held) are gone. Removed
    rows are marked dead and dropped when they are half of them."""

    def __init__(self) -> None:
        self._rows: dict[int, int] = {}  # article id → row
        self._entries: list[tuple[int, str | None, str | None, ArticleFeatures] | None] = []  # by row; None: removed
        self._vectors: np.ndarray | None = None  # (capacity, dimension) float32
        self._times: np.ndarray | None = None  # (capacity,) float64, NaN where removed or unused

    def add(self, article_id: int, title: str | None, text: str | None, moment: datetime, feats: ArticleFeatures) -> None:
        import numpy as np

        self.remove(article_id)
        if len(self._entries) > 2 * len(self._rows) + 16:  # more removed rows than live ones
            self._compact()
        row = len(self._entries)
        if self._vectors is None or row == len(self._vectors):
            vectors = np.zeros((max(64, 2 * row), len(feats.vector)), dtype=np.float32)
            times = np.full(len(vectors), np.nan)
            if self._vectors is not None and self._times is not None:
                vectors[:row], times[:row] = self._vectors[:row], self._times[:row]
            self._vectors, self._times = vectors, times
        assert self._times is not None
        self._vectors[row], self._times[row] = feats.vector, _as_utc(moment).timestamp()
        self._entries.append((article_id, title, text, feats))
        self._rows[article_id] = row

    def remove(self, article_id: int) -> None:
        row = self._rows.pop(article_id, None)
        if row is not None and self._times is not None:
            self._entries[row] = None
            self._times[row] = float("nan")

    def _compact(self) -> None:
        """Move the live rows to the front, in the order they were added."""
        if self._vectors is None or self._times is None:
            return
        live = [row for row, entry in enumerate(self._entries) if entry is not None]
        self._vectors[: len(live)] = self._vectors[live]
        self._times[: len(live)] = self._times[live]
        self._times[len(live):] = float("nan")
        self._entries = [self._entries[row] for row in live]
        self._rows = {entry[0]: row for row, entry in enumerate(self._entries) if entry is not None}

    def nearest(self, vector: np.ndarray, at: float, window: float) -> list[tuple[int, str | None, str | None, ArticleFeatures]]:
        """(id, title, text, features) of the ``AHEAD_NEAREST`` articles held nearest to ``vector``
        (title + lead, cosine) among those within ``window`` seconds of ``at`` (POSIX seconds),
        nearest first (all of them, in the order they were added, when there are no more)."""
        import numpy as np

        if self._vectors is None or self._times is None:
            return []
        used = len(self._entries)
        rows = np.flatnonzero(np.abs(self._times[:used] - at) <= window)  # NaN (removed) compares False
        if len(rows) > AHEAD_NEAREST:
            coarse = self._vectors[rows] @ vector
            rows = rows[np.argsort(-coarse)[:AHEAD_NEAREST]]
        return [entry for entry in (self._entries[row] for row in rows) if entry is not None]


def _retrieve(future: asyncio.Future) -> None:
    """Mark a prefetch's error as seen (``link`` reports it where it takes the result), so that one
    never taken logs no "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


def _words(article: Article | stored.Unlinked) -> int:
    """Words in the article's title and text (``text.word_count``: each Chinese character or kana is one)."""
    return word_count(f"{article.title or ''} {article.text or ''}")


class LinkStep(Step[stored.Unlinked, LinkOutcome | None]):
    """Linking ready articles (``Linker.link``) on the leased-step runner: ``PREFETCH`` articles per
    worker process in flight, assigned one at a time in claim order while the worker pool computes
    the next ones' features (more would only queue in the worker pool ahead of the feed parses and
    page extractions), each within the runner's deadline; one that raised or overran is booked as
    linked without a story (it would fail again). Claims are taken once half the slots are free
    (``claim``), not one article per finished one."""

    name = "link"
    model = Article
    until_column = "link_lease_until"

    def __init__(self, linker: Linker) -> None:
        self.linker = linker
        self.concurrency = PREFETCH * linker.workers.workers

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[stored.Unlinked]:
        """``Linker.claim`` of ``limit`` articles once at least half the slots are free; none
        before (the runner claims again as each row in flight finishes). Each claim is a
        transaction of its own (two statements and the commit, about 1.5 ms of the main process on
        SQLite), and while articles are linked one after the other a slot frees at each
        assignment: claimed one at a time, every assignment paid for one. The order is the same
        (oldest publication first), and the worker pool still has at least half of ``PREFETCH``
        articles ahead per worker."""
        if 2 * limit < self.concurrency:
            return []  # rows are in flight (limit < concurrency): the next to finish claims again
        return await self.linker.claim(limit)

    async def handle(self, article: stored.Unlinked) -> LinkOutcome | None:
        return await self.linker.link(article)

    async def failed(self, article: stored.Unlinked, reason: str) -> None:
        log.warning("article %s: linking failed (%s), left without a story", article.id, reason)
        await self.linker._give_up(article.id)
