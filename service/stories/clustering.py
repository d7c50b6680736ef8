"""Layer 4: online story clustering. Each new article is compared with the stories active in a time
window around its publication time and joins the most similar one above a threshold, or starts a
new story. After each assignment, the grown story merges with any other story of the window whose
centroid it has come to resemble (``mergeable``). There is no look-ahead, so a file replayed through
``OnlineClusterer`` gets exactly what the service decides live.

Similarity of an article ``a`` to a story ``s`` (``similarity``): five signals (``signals``: the
cosine of ``a``'s title + lead vector with the story's centroid and nearest exemplars, the cosine
of its text vector with the story's text centroid, the share of its named things and numbers the
story mentions, the share of its IDF-weighted terms the story uses when the story has articles in
``a``'s language, and its length), combined by the learned model of ``service.stories.combiner``,
minus a penalty growing with the distance in hours between ``a`` and the story's span. The score
estimates the SemEval-2022 Task 8 "Overall" judgement on a 0..1 scale. The design follows Miranda
et al. (2018), "Multilingual Clustering of Streaming News" (EMNLP): similarities of several
representations to a cluster, combined by weights learned from labelled pairs, a time feature, a
threshold to open new clusters, with our multilingual encoder taking the place of their
cross-lingual linking step.

Candidates: stories whose span comes within ``window`` hours of the article, found through a time
index (in memory here; ``stories.last_published_at`` in the database); then only the ``top``
stories by embedding similarity get the full score, so the cost per article depends on the
window's size, not on the corpus.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.stories import crosslingual, headlines
from service.stories.combiner import Signals, default_combiner
from service.stories.features import ArticleFeatures
from service.stories.figures import Figure, contradict

EXEMPLARS = 12
MAX_TERMS = 300
MAX_ENTITIES = 300
MAX_FIGURES = 100


@dataclass(frozen=True)
class Params:
    """Tunable parts of the clusterer, scores in the combiner's unit (see docs/benchmarks.md).
    ``threshold`` applies to articles with body text: the median over the cross-validation folds
    of ``bench/stories_combiner.py`` of the cut with the best ``same_story`` F1 on the training
    folds (SemEval pairs; ``combiner.json`` records it). ``threshold_title`` applies to
    headline-only articles (feeds without pages), whose signals are noisier and score lower;
    tuned on the UCI dev slice (B-cubed F1 0.853). ``w_time``: score taken off at
    ``window_hours`` of distance from the story's span. ``text_margin``: see ``cascade_near``; ``cited_threshold``: see its note."""

    threshold: float = 0.70
    threshold_title: float = 0.44
    w_time: float = 0.10
    window_hours: float = 72.0
    top: int = 30
    merge_threshold: float = 0.65
    merge_min: int = 3
    text_margin: float = 0.22
    cited_threshold: float = 0.5
    """The score a story holding an earlier article of an outlet the article cites needs (see
    ``choose``): the midpoint of the SemEval scale ((4 − 2.5) / 3, between "somewhat similar" and
    "somewhat dissimilar"), i.e. "on the same subject". Set from the scale, not fitted."""


@dataclass
class StoryState:
    """What the clusterer keeps of one story: vector sum and count (centroid), text vector sum (None
    until a member with a text vector joins; see ``add``), up to ``EXEMPLARS`` member vectors,
    per-language term document counts, entity counts, the figures its members state (pooled, at
    most ``MAX_FIGURES``, the first stated kept; ``figures.figures``), publication span
    (POSIX seconds or None), languages. ``key`` is the caller's id (database id, or an index)."""

    key: Any
    vector_sum: np.ndarray
    text_sum: np.ndarray | None
    count: int = 0
    exemplars: list[np.ndarray] = field(default_factory=list)
    terms: dict[str, Counter[str]] = field(default_factory=dict)
    lang_counts: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    figures: tuple[Figure, ...] = ()
    first_published: float | None = None
    last_published: float | None = None
    _derived: dict[str, tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False, compare=False)
    """``_derive``'s results by name, each with the object it was derived from."""

    def _derive(self, name: str, source: Any, make: Callable[[Any], Any]) -> Any:
        """``make(source)``, kept until ``source`` is another object: a story is scored against
        up to two articles' worth of candidates per article (``cascade_near``, then ``choose``),
        and a cached state (``Linker.states``) against many articles, while its sums and exemplars
        change only as members join (``add`` and ``absorb`` make new arrays and lists)."""
        kept = self._derived.get(name)
        if kept is not None and kept[0] is source:
            return kept[1]
        value = make(source)
        self._derived[name] = (source, value)
        return value

    @property
    def centroid(self) -> np.ndarray:
        """The unit-length mean of the members' vectors."""
        return self._derive("centroid", self.vector_sum, _unit)

    @property
    def text_centroid(self) -> np.ndarray | None:
        """The unit-length mean of the members' text vectors, or None (no text sum)."""
        if self.text_sum is None:
            return None
        return self._derive("text_centroid", self.text_sum, _unit)

    @property
    def exemplar_matrix(self) -> np.ndarray:
        """The exemplars stacked, one row each (len(exemplars), dimension); the story must have one."""
        return self._derive("exemplars", self.exemplars, np.stack)

    @classmethod
    def start(cls, key: Any, article: ArticleFeatures) -> StoryState:
        """A story holding just ``article``."""
        state = cls(key=key, vector_sum=np.zeros_like(article.vector, dtype=np.float32), text_sum=None)
        state.add(article)
        return state

    def add(self, article: ArticleFeatures) -> None:
        """Fold ``article`` into the story (centroid, exemplars, terms, entities, span). A text
        vector that does not fit the text sum (a record from another text encoder, or none yet)
        starts the sum again from it; an article without one leaves the sum as it is."""
        self.vector_sum = self.vector_sum + article.vector.astype(np.float32)
        self.text_sum = _sum_vectors(self.text_sum, article.text_vector)
        self.count += 1
        if len(self.exemplars) < EXEMPLARS:
            self.exemplars = [*self.exemplars, article.vector.astype(np.float32)]  # a new list: see ``_derive``
        lang = article.lang or "und"
        self.lang_counts[lang] += 1
        bucket = self.terms.setdefault(lang, Counter())
        bucket.update(article.terms.keys())
        if len(bucket) > MAX_TERMS * 2:
            self.terms[lang] = Counter(dict(bucket.most_common(MAX_TERMS)))
        self.entities.update(article.entities)
        if len(self.entities) > MAX_ENTITIES * 2:
            self.entities = Counter(dict(self.entities.most_common(MAX_ENTITIES)))
        self.figures = _pool(self.figures, article.figures)
        if article.published is not None:
            self.first_published = min(self.first_published or article.published, article.published)
            self.last_published = max(self.last_published or article.published, article.published)

    def absorb(self, other: StoryState) -> None:
        """Fold the whole of ``other`` into this story (a merge)."""
        self.vector_sum = self.vector_sum + other.vector_sum
        self.text_sum = _sum_vectors(self.text_sum, other.text_sum)
        self.count += other.count
        self.exemplars = (self.exemplars + other.exemplars)[:EXEMPLARS]
        for lang, bucket in other.terms.items():
            self.terms.setdefault(lang, Counter()).update(bucket)
        self.lang_counts.update(other.lang_counts)
        self.entities.update(other.entities)
        self.figures = _pool(self.figures, other.figures)
        for moment in (other.first_published, other.last_published):
            if moment is not None:
                self.first_published = min(self.first_published or moment, moment)
                self.last_published = max(self.last_published or moment, moment)

    # -- storage ----------------------------------------------------------------------------

    def to_record(self) -> dict:
        """JSON-ready state; vectors are base64 strings (sums: float32, exemplars: float16), about
        15 kB for a story with ``EXEMPLARS`` exemplars and its terms."""
        record = {
            "vector_sum": pack(self.vector_sum, np.float32),
            "count": self.count,
            "exemplars": [pack(v, np.float16) for v in self.exemplars],
            "terms": {lang: dict(c.most_common(MAX_TERMS)) for lang, c in self.terms.items()},
            "lang_counts": dict(self.lang_counts),
            "entities": dict(self.entities.most_common(MAX_ENTITIES)),
            "figures": [list(f) for f in self.figures],
            "first_published": self.first_published,
            "last_published": self.last_published,
        }
        if self.text_sum is not None:
            record["text_sum"] = pack(self.text_sum, np.float32)
        return record

    @classmethod
    def from_record(cls, key: Any, record: dict) -> StoryState:
        """Inverse of ``to_record``. A record without a text sum (saved before stories kept one, or
        without a text encoder) has None; one without figures (saved before stories kept them)
        states none."""
        return cls(
            key=key,
            vector_sum=unpack(record["vector_sum"], np.float32),
            text_sum=unpack(record["text_sum"], np.float32) if "text_sum" in record else None,
            count=record["count"],
            exemplars=[unpack(v, np.float16) for v in record["exemplars"]],
            terms={lang: Counter(c) for lang, c in record["terms"].items()},
            lang_counts=Counter(record["lang_counts"]),
            entities=Counter(record["entities"]),
            figures=tuple((float(value), float(unit)) for value, unit in record.get("figures", [])),
            first_published=record["first_published"],
            last_published=record["last_published"],
        )


def _unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length (as it is when its norm is 0)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _sum_vectors(total: np.ndarray | None, vector: np.ndarray | None) -> np.ndarray | None:
    """``total + vector`` as float32; ``vector`` alone where ``total`` is None or of another shape
    (another encoder's); ``total`` where ``vector`` is None."""
    if vector is None:
        return total
    vector = np.asarray(vector, dtype=np.float32)
    return vector.copy() if total is None or total.shape != vector.shape else total + vector


def _pool(figures: tuple[Figure, ...], more: tuple[Figure, ...]) -> tuple[Figure, ...]:
    """``figures`` and those of ``more`` not among them, at most ``MAX_FIGURES``."""
    if not more or len(figures) >= MAX_FIGURES:
        return figures
    known = set(figures)
    return (figures + tuple(f for f in more if f not in known))[:MAX_FIGURES]


def pack(vector: np.ndarray, dtype: type = np.float16) -> str:
    """A vector as a base64 string of ``dtype`` values (little-endian)."""
    return base64.b64encode(np.asarray(vector, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def unpack(data: str | bytes, dtype: type = np.float16) -> np.ndarray:
    """Inverse of ``pack`` (also accepts the raw bytes); returns float32."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.float32)


@dataclass
class Scored:
    """The outcome for one article: the chosen story's key (None: start a new story), its score,
    the best score seen (also when below the threshold), ``evidence`` (``"similarity"``,
    ``"citation"``, or None for a new story) and ``bridged``: keys of other stories the article
    shows to be the same story as the chosen one (see ``choose``), to merge into it."""

    key: Any
    score: float
    best_score: float
    evidence: str | None = None
    bridged: list[Any] = field(default_factory=list)


def _idf(article: ArticleFeatures, candidates: Iterable[StoryState]) -> dict[str, float]:
    lang = article.lang or "und"
    df: Counter[str] = Counter()
    total = 0
    for story in candidates:
        bucket = story.terms.get(lang)
        if not bucket:
            continue
        total += story.lang_counts.get(lang, 0)
        for term in article.terms:
            if term in bucket:  # the others would add 0
                df[term] += bucket[term]
    return {term: math.log((total + 1) / (df[term] + 1)) + 1.0 for term in article.terms}


def _weight_total(article: ArticleFeatures, idf: dict[str, float] | None) -> float:
    """The sum of the weights of ``article``'s terms (``idf``; 1 each without it): the denominator
    of the ``lexical`` signal, the same for every story the article is scored against."""
    weights = idf or {}
    return sum(weights.get(t, 1.0) for t in article.terms)


def signals(article: ArticleFeatures, story: StoryState, idf: dict[str, float] | None = None) -> Signals:
    """The combiner's inputs for ``article`` against ``story`` (see ``service.stories.combiner``).
    ``idf`` maps each of the article's terms to its weight (default: 1 for every term)."""
    return _signals(article, story, idf, _weight_total(article, idf))


def _signals(article: ArticleFeatures, story: StoryState, idf: dict[str, float] | None, total: float) -> Signals:
    """``signals`` with the article's ``_weight_total`` under ``idf`` given (``Scores`` computes it
    once for all the stories it scores)."""
    return _weighted(_unweighted(article, story), article, story, idf, total)


def _unweighted(article: ArticleFeatures, story: StoryState) -> Signals:
    """The signals of ``article`` against ``story`` that the term weights leave as they are: all but
    ``lexical`` (None here; ``_weighted`` adds it). ``Scores`` keeps them while the weights change."""
    lead = float(article.vector @ story.centroid)
    if story.exemplars:
        nearest = np.sort(story.exemplar_matrix @ article.vector)[-3:]
        # The float32 sum over the count is what ``nearest.mean()`` computes (a float32 sum, then a
        # correctly rounded float32 quotient), at a fifth of its cost.
        lead = 0.6 * lead + 0.4 * float(nearest.sum() / len(nearest))
    text = None
    centroid = story.text_centroid
    if centroid is not None and text_comparable(article, story):
        text = float(np.asarray(article.text_vector, dtype=np.float32) @ centroid)
    shared = 0.0
    if article.entities:
        hits = sum(1 for e in article.entities if e in story.entities)
        shared = hits / max(1, min(len(article.entities), len(story.entities)))
    contradicted = max(0.0, lead) if text is not None and contradict(article.figures, story.figures) else 0.0
    return Signals(
        lead=lead, text=text, entities=shared, lexical=None, length=math.log(max(1, article.chars)), contradicted=contradicted
    )


def _weighted(base: Signals, article: ArticleFeatures, story: StoryState, idf: dict[str, float] | None, total: float) -> Signals:
    """``base`` (``_unweighted``) with the ``lexical`` signal: the share of the article's term
    weights (``idf``, 1 each without it; ``total``: ``_weight_total``) the story's terms in the
    article's language carry; ``base`` itself when the story has no article in that language."""
    bucket = story.terms.get(article.lang or "und")
    if bucket is None:
        return base
    weights = idf or {}
    n = story.lang_counts.get(article.lang or "und", 1)
    # The terms the story lacks add 0.0, which leaves a sum of non-negative floats exactly as it is.
    num = sum(weights.get(t, 1.0) * bucket[t] / n for t in article.terms if t in bucket)
    lexical = num / total if total else 0.0
    return dataclasses.replace(base, lexical=lexical)


def similarity(article: ArticleFeatures, story: StoryState, idf: dict[str, float] | None = None, params: Params = Params()) -> float:
    """The score (about -0.1 .. 1, the combiner's unit) of ``article`` joining ``story``: the
    combined ``signals`` minus the time penalty; see the module docstring."""
    return default_combiner().score(signals(article, story, idf)) - _time_penalty(article, story, params)


class Scores:
    """The ``similarity`` of one article to stories, each kept while the article's text vector
    (``ArticleFeatures.text_vector``: the object), the story's state (the object) and the term
    weights (``_idf`` over the stories scored with it, compared by value) are the same: an article
    is scored against the stories of its window up to three times (``cascade_near`` before its turn
    and at it, ``choose`` when it is assigned), mostly against the same states (``Linker.states``
    hands out one object per story version), so each pair is scored once; when the weights change
    (a story joined the candidates) only the ``lexical`` signal of a pair is computed again
    (``_weighted``; the others, ``_unweighted``, are kept). The states must not be changed after
    they are scored (``Linker.states``' rule); the article's fields but its text vector must not
    change either. Not locked: one thread at a time."""

    def __init__(self, article: ArticleFeatures, params: Params = Params()) -> None:
        self.article = article
        self.params = params
        self._idf: dict[str, float] | None = None
        self._total = 0.0
        self._kept: dict[int, tuple[StoryState, np.ndarray | None, float]] = {}  # by id() of the state
        # ``_unweighted`` by id() of the state, kept when the term weights change (a story joining the
        # window changes them: the scores go, the signals but ``lexical`` stay).
        self._unweighted: dict[int, tuple[StoryState, np.ndarray | None, Signals]] = {}
        self._crosses: dict[int, tuple[StoryState, np.ndarray | None, bool]] = {}  # ``crosses``, by id() of the state

    def of(self, stories: Iterable[StoryState], among: Iterable[StoryState]) -> list[float]:
        """The scores of ``stories`` (in order), with the term weights of ``among`` (``_idf``:
        the candidates the decision is made among)."""
        idf = _idf(self.article, among)
        if idf != self._idf:
            self._idf, self._total, self._kept = idf, _weight_total(self.article, idf), {}
        text = self.article.text_vector
        scores = []
        for story in stories:
            kept = self._kept.get(id(story))
            if kept is not None and kept[0] is story and kept[1] is text:
                scores.append(kept[2])
                continue
            base = self._unweighted.get(id(story))
            if base is None or base[0] is not story or base[1] is not text:
                base = self._unweighted[id(story)] = (story, text, _unweighted(self.article, story))
            found = _weighted(base[2], self.article, story, idf, self._total)
            score = default_combiner().score(found) - _time_penalty(self.article, story, self.params)
            self._kept[id(story)] = (story, text, score)
            scores.append(score)
        return scores

    def crosses(self, story: StoryState) -> bool:
        """The cross-language decision for the article and ``story`` (``joins``' second way in),
        kept like the scores (it reads no term weights)."""
        text = self.article.text_vector
        kept = self._crosses.get(id(story))
        if kept is not None and kept[0] is story and kept[1] is text:
            return kept[2]
        accepts = _cross_accepts(self.article, story, self.params)
        self._crosses[id(story)] = (story, text, accepts)
        return accepts


def _time_penalty(article: ArticleFeatures, story: StoryState, params: Params) -> float:
    if article.published is None or story.first_published is None:
        return 0.0
    lo, hi = story.first_published, story.last_published or story.first_published
    gap_hours = max(lo - article.published, article.published - hi, 0.0) / 3600
    return params.w_time * min(1.0, gap_hours / params.window_hours)


def cross_score(article: ArticleFeatures, story: StoryState, params: Params = Params()) -> float:
    """The score the cross-language decision reads (``crosslingual.Evidence.score``): the
    combiner without the ``lexical`` and ``text`` signals (language-independent, and known before
    the cascade computes any text vector), minus the time penalty."""
    found = dataclasses.replace(signals(article, story), lexical=None, text=None)
    return default_combiner().score(found) - _time_penalty(article, story, params)


def choose(
    article: ArticleFeatures, candidates: list[StoryState], params: Params = Params(), cited: dict[Any, float] | None = None,
    scores: Scores | None = None,
) -> Scored:
    """The best of ``candidates`` for ``article``: its key if its score reaches ``params.threshold``,
    else None. Only the ``params.top`` candidates nearest by centroid cosine get the full score
    (and every cited story).

    Citation evidence (layer 5 used while linking): ``cited`` maps the key of each candidate that
    holds an article of an outlet ``article`` cites ("Welt reported …"), published before it, to
    that article's publication time (POSIX seconds). A retelling that names its source and is on
    the same subject (score ≥ ``params.cited_threshold``) belongs with that source's report, even
    when the two are in different languages and share few words; the best such story is chosen
    before any other (``evidence="citation"``). A story that started after the cited report and
    also reaches ``params.threshold`` with the article is then the same story told separately (its
    retellings arrived before the evidence that links them): it is ``bridged``, to be merged. A
    story that began before the cited report (a related earlier event) is not.

    ``scores``: the article's ``Scores`` to score with (and keep the scores in); new ones when
    None or another article's."""
    if not candidates:
        return Scored(None, 0.0, 0.0)
    cited = cited or {}
    if len(candidates) > params.top:
        coarse = np.stack([c.centroid for c in candidates]) @ article.vector
        keep = set(np.argsort(-coarse)[: params.top].tolist())
        shortlist = [c for i, c in enumerate(candidates) if i in keep or c.key in cited]
    else:
        shortlist = candidates
    scorer = scores if scores is not None and scores.article is article else Scores(article, params)
    scored = list(zip(scorer.of(shortlist, candidates), shortlist, strict=True))
    best_score = max(score for score, _story in scored)
    joinable = [(score, story) for score, story in scored if joins(article, story, score, params, scorer)]
    sources = [(score, story) for score, story in scored if story.key in cited and score >= params.cited_threshold]
    if sources:
        score, story = max(sources, key=lambda pair: pair[0])
        since = cited[story.key]
        bridged = [
            other.key for other_score, other in scored
            if other is not story and joins(article, other, other_score, params, scorer)
            and other.first_published is not None and other.first_published >= since
        ]
        return Scored(story.key, score, best_score, "citation", bridged)
    if joinable:
        score, story = max(joinable, key=lambda pair: pair[0])
        return Scored(story.key, score, best_score, "similarity")
    return Scored(None, 0.0, best_score)


def cascade_near(
    article: ArticleFeatures, candidates: list[StoryState], params: Params = Params(), scores: Scores | None = None
) -> list[Any]:
    """The keys of the ``candidates`` whose decision for ``article`` its text vector can change,
    judged from its score without one (``article.text_vector`` None); empty when none can: no
    candidate scores within ``params.text_margin`` of the threshold, or exactly one scores above
    the threshold by more than it.

    Rule for ``text_margin``: the 95th percentile of how far the e5 text signal moves a score
    (|score with the text vector − score without|, the combiner's unit), so that a decision farther
    than it from the threshold is one the text vector almost never changes. Measured by
    ``bench/stories_names_cascade.py`` on the SemEval pairs, the margin taken on the training folds
    of a grouped cross-validation and checked on the test folds (2026-12-02, text vectors centered
    per language; one model for every pair with text, whatever the languages): 0.224 (folds
    0.213–0.243); e5 then flips 2.4 % of the decisions it skips (6 of 251 per shuffle) and 58 % of
    the pairs' encodings are skipped (pairs built to be similar; on a stream most articles have no
    story near the threshold at all).

    A story in other languages that the cross-language decision accepts is near as well, whatever
    its score: with text vectors on both sides the combiner decides instead (see ``joins``), and
    the text vector is what can turn that decision down.

    ``scores``: the article's ``Scores`` to score with (and keep the scores in); new ones when
    None or another article's."""
    if not candidates:
        return []
    threshold = threshold_for(article, params)
    scorer = scores if scores is not None and scores.article is article else Scores(article, params)
    scored = zip(scorer.of(candidates, candidates), candidates, strict=True)
    near = [(score, story.key) for score, story in scored if score >= threshold - params.text_margin or scorer.crosses(story)]
    if not near or (len(near) == 1 and near[0][0] >= threshold + params.text_margin):
        return []
    return [key for _score, key in near]


def other_language(article: ArticleFeatures, story: StoryState) -> bool:
    """Whether ``story`` has no article in ``article``'s language (known languages only)."""
    return article.lang is not None and article.lang not in story.lang_counts and "und" not in story.lang_counts


def joins(article: ArticleFeatures, story: StoryState, score: float, params: Params = Params(), scores: Scores | None = None) -> bool:
    """Whether ``article`` may join ``story`` at ``score`` (``similarity``): the score reaches
    ``threshold_for``, or, for a story in other languages only that the text signal cannot be
    read against (no text vector on one side), the cross-language decision (``crosslingual``)
    says yes on the evidence of names and score.

    Why not also with text vectors on both sides: the decision reads no text vector, and its
    operating point (precision ≥ 0.8) holds on cross-language pairs at large. Asked only after
    the combiner, with the text signal, has said no, it judges the pairs the text vector has
    already turned down, where it is mostly wrong: on the SemEval de-en pairs it added 2.5 wrong
    links for 0.2 right ones per shuffle (grouped CV: de-en precision 1.00 → 0.71, F1 0.733 → 0.646;
    docs/benchmarks.md, "Cross-language rule").

    A headline-only article also needs the evidence ``headlines.enough_evidence`` asks for (names
    in common where the title + lead encoder does not read both sides' languages; a second shared
    word for a very short headline).

    ``scores``: the article's ``Scores``, whose kept cross-language decisions (``Scores.crosses``)
    are taken when they are the article's."""
    if not headlines.enough_evidence(article, story.lang_counts, story.terms.get(article.lang or "und", {}), story.entities):
        return False
    if score >= threshold_for(article, params):
        return True
    return scores.crosses(story) if scores is not None and scores.article is article else _cross_accepts(article, story, params)


def text_comparable(article: ArticleFeatures, story: StoryState) -> bool:
    """Whether ``signals`` has a ``text`` signal for ``article`` against ``story``: both have text
    vectors of one encoder."""
    centroid = story.text_centroid
    return article.text_vector is not None and centroid is not None and centroid.shape == article.text_vector.shape


def _cross_accepts(article: ArticleFeatures, story: StoryState, params: Params) -> bool:
    """The cross-language decision for ``article`` and ``story``, asked only when the story is in
    other languages only and the text signal is missing (see ``joins``)."""
    if not other_language(article, story) or text_comparable(article, story):
        return False
    return crosslingual.default_decision().same_story(crosslingual.evidence(cross_score(article, story, params), article.entities, story.entities))


class DocumentFrequencies:
    """Term document frequencies per language over a background collection (for ``pair_score``,
    where no window of stories supplies them)."""

    def __init__(self, articles: Iterable[ArticleFeatures] = ()) -> None:
        self.df: dict[str, Counter[str]] = {}
        self.n: Counter[str] = Counter()
        for article in articles:
            self.add(article)

    def add(self, article: ArticleFeatures) -> None:
        lang = article.lang or "und"
        self.n[lang] += 1
        self.df.setdefault(lang, Counter()).update(article.terms.keys())

    def idf(self, article: ArticleFeatures) -> dict[str, float]:
        """Inverse document frequency of ``article``'s terms in its language (as in ``choose``)."""
        lang = article.lang or "und"
        df, n = self.df.get(lang, Counter()), self.n.get(lang, 0)
        return {term: math.log((n + 1) / (df[term] + 1)) + 1.0 for term in article.terms}


def mergeable(story: StoryState, others: Iterable[tuple[Any, np.ndarray, int]], params: Params = Params()) -> list[Any]:
    """Keys of the stories ``story`` may merge with, after it grew: ``others`` are (key, unit
    centroid, article count) of the other stories in the window. Two stories of at least
    ``merge_min`` articles whose centroids reach ``merge_threshold`` cosine are one story told in
    two strands (typically split while it broke, or in two languages), if ``merge_supported``
    says so too (the caller asks it with each candidate's state); merging them is the only
    decision the clusterer revisits, and it happens live, as the story grows."""
    if story.count < params.merge_min:
        return []
    centroid = story.centroid
    return [
        key for key, vector, count in others
        if key != story.key and count >= params.merge_min and float(vector @ centroid) >= params.merge_threshold
    ]


def merge_supported(story: StoryState, other: StoryState) -> bool:
    """Whether ``story`` and ``other``, close by centroid (``mergeable``), have the evidence besides
    the centroids' cosine that a merge needs (``headlines.stories_agree``: names in common where
    the title + lead encoder does not read their languages)."""
    return headlines.stories_agree(story.lang_counts, story.entities, other.lang_counts, other.entities)


def threshold_for(article: ArticleFeatures, params: Params) -> float:
    """The score ``article`` needs to join a story: ``threshold`` with body text, else
    ``threshold_title``."""
    return params.threshold if article.has_text else params.threshold_title


def pair_score(
    a: ArticleFeatures, b: ArticleFeatures, params: Params = Params(), background: DocumentFrequencies | None = None
) -> float:
    """The clusterer's similarity of two single articles, as a 0..1 score (``b`` seen as a story
    of one); symmetric (the mean of both directions). ``background`` supplies term weights (the
    service takes them from the stories in the window); without it every term weighs 1."""
    one = similarity(a, StoryState.start(0, b), background.idf(a) if background else None, params)
    two = similarity(b, StoryState.start(0, a), background.idf(b) if background else None, params)
    return min(1.0, max(0.0, (one + two) / 2))


def pair_same_story(a: ArticleFeatures, b: ArticleFeatures, score: float, params: Params = Params()) -> bool:
    """The ``same_story`` decision for two single articles with ``pair_score`` ``score``: the
    lower of their thresholds (``threshold_for``), or, across languages when one of them has no
    text vector, the cross-language decision (``crosslingual``) on their names (as ``joins``); a
    headline-only side needs ``headlines.enough_evidence`` against the other."""
    for one, other in ((a, b), (b, a)):
        if not headlines.enough_evidence(one, [other.lang or "und"], dict.fromkeys(other.terms, 1), other.entities):
            return False
    if score >= min(threshold_for(a, params), threshold_for(b, params)):
        return True
    if a.lang is None or b.lang is None or a.lang == b.lang or (a.text_vector is not None and b.text_vector is not None):
        return False
    return crosslingual.default_decision().same_story(pair_evidence(a, b, params))


def pair_evidence(a: ArticleFeatures, b: ArticleFeatures, params: Params = Params()) -> crosslingual.Evidence:
    """The cross-language evidence of two single articles: the mean of both directions (each seen
    as a story of one), as ``pair_score``."""
    one = crosslingual.evidence(cross_score(a, StoryState.start(0, b), params), a.entities, b.entities)
    two = crosslingual.evidence(cross_score(b, StoryState.start(0, a), params), b.entities, a.entities)
    return crosslingual.Evidence(*[(x + y) / 2 for x, y in zip(one.row(), two.row(), strict=True)])


class OnlineClusterer:
    """The online algorithm in memory: ``add`` each article in publication order and get its story
    (an int). Stories leave the candidate set ``window`` hours after their last article; articles
    without a publication time are treated as published with the last one seen (all together when
    none has one)."""

    def __init__(self, params: Params = Params()) -> None:
        self.params = params
        self.stories: list[StoryState] = []
        self._active: dict[int, StoryState] = {}
        self._clock: float | None = None
        self.merged_into: dict[int, int] = {}
        self.comparisons = 0

    def _evict(self, now: float) -> None:
        horizon = now - self.params.window_hours * 3600
        stale = [k for k, s in self._active.items() if s.last_published is not None and s.last_published < horizon]
        for key in stale:
            del self._active[key]

    def candidates(self) -> list[StoryState]:
        """The stories still in the window."""
        return list(self._active.values())

    def add(self, article: ArticleFeatures) -> tuple[int, float]:
        """Assign ``article``; returns (story index, score — 0.0 for a new story). Merges may later
        fold that story into another: ``resolve`` gives a story's final index."""
        if article.published is not None and (self._clock is None or article.published > self._clock):
            self._clock = article.published
            self._evict_lazily()
        candidates = self.candidates()
        self.comparisons += min(len(candidates), self.params.top)
        outcome = choose(article, candidates, self.params)
        if outcome.key is None:
            key = len(self.stories)
            story = StoryState.start(key, article)
            self.stories.append(story)
            self._active[key] = story
            score = 0.0
        else:
            key, score = outcome.key, outcome.score
            story = self.stories[key]
            story.add(article)
        return self._merge(story), score

    def _merge(self, story: StoryState) -> int:
        others = ((s.key, s.centroid, s.count) for s in self._active.values() if s.count >= self.params.merge_min)
        keys = [key for key in mergeable(story, others, self.params) if merge_supported(story, self.stories[key])]
        if not keys:
            return story.key
        group = sorted([story.key, *keys])
        survivor = self.stories[group[0]]
        for key in group[1:]:
            survivor.absorb(self.stories[key])
            self.merged_into[key] = survivor.key
            self._active.pop(key, None)
        return survivor.key

    def resolve(self, key: int) -> int:
        """The story ``key`` ended in after merges."""
        while key in self.merged_into:
            key = self.merged_into[key]
        return key

    def _evict_lazily(self) -> None:
        # Scanning the active set is O(window); do it once per simulated hour, not per article.
        assert self._clock is not None
        hour = int(self._clock // 3600)
        if getattr(self, "_last_evict_hour", None) != hour:
            self._last_evict_hour = hour
            self._evict(self._clock)
