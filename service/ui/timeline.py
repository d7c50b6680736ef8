"""The layout of a story's timeline, drawn as SVG by ``templates/story.html``: one lane per outlet
(lanes in the order of each outlet's first article), each article a mark placed by its publication
time (first-seen time where none), and an arrow from each article to the article it cites.

Horizontal positions are percentages of the drawing's width (``LEFT``..``RIGHT``), so the SVG
scales to any screen width without script; vertical positions are pixels (``LANE_HEIGHT`` a lane)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.shapes import CitationEdge, StoryArticle, StoryPublic

LEFT, RIGHT = 4.0, 96.0
"""Percent of the width where the earliest and the latest article are placed."""
TOP, LANE_HEIGHT, BOTTOM = 34, 52, 30
"""Pixels: above the first lane (its label), per lane, below the last lane (the time axis)."""
BEND = 14
"""Pixels an arrow's midpoint is raised per lane it crosses (one lane for arrows within a lane), so
arrows that would lie on one straight line (two reports cited by a third) stay apart."""


@dataclass
class Mark:
    """One article on the timeline: ``x`` in percent of the width, ``y`` in pixels; ``after`` is
    the time since the first report; ``tone`` numbers its language (0.. in the story's order)."""

    article: StoryArticle
    at: datetime
    after: timedelta
    x: float
    y: int
    tone: int
    first: bool


@dataclass
class Lane:
    """One outlet's articles, by time; ``outlet`` is None for articles of no known outlet."""

    outlet: str | None
    y: int
    marks: list[Mark] = field(default_factory=list)


@dataclass
class Arrow:
    """A citation drawn from the citing article's mark to the cited article's mark, through a
    raised midpoint (``mid_x`` percent, ``mid_y`` pixels)."""

    edge: CitationEdge
    source: Mark
    target: Mark
    mid_x: float
    mid_y: float

    @classmethod
    def between(cls, edge: CitationEdge, source: Mark, target: Mark) -> Arrow:
        lanes = max(abs(source.y - target.y) // LANE_HEIGHT, 1)
        return cls(edge, source, target, round((source.x + target.x) / 2, 2), (source.y + target.y) / 2 - BEND * lanes)


@dataclass
class Timeline:
    lanes: list[Lane]
    arrows: list[Arrow]
    start: datetime | None
    end: datetime | None
    height: int
    languages: list[str]


def moment(article: StoryArticle) -> datetime:
    """When ``article`` was published, else when it was first seen (the API's ``sort_at``)."""
    return article.published_at or article.first_seen_at


def lay_out(story: StoryPublic) -> Timeline:
    """The timeline of ``story`` (its articles come ordered by time, as ``read_story`` gives them)."""
    articles = story.articles
    languages = list(story.languages)
    for article in articles:  # an article of no identified language still gets a tone
        if article.language not in languages:
            languages.append(article.language)
    start = min((moment(a) for a in articles), default=None)
    end = max((moment(a) for a in articles), default=None)
    span = (end - start).total_seconds() if start and end else 0.0
    first_id = story.first_reported.id if story.first_reported else None
    lanes: dict[str | None, Lane] = {}
    marks: dict[int, Mark] = {}
    for article in articles:
        lane = lanes.get(article.outlet)
        if lane is None:
            lane = lanes[article.outlet] = Lane(article.outlet, TOP + LANE_HEIGHT * len(lanes))
        at = moment(article)
        offset = (at - start).total_seconds() / span if span else 0.0
        mark = Mark(article, at, at - start, round(LEFT + (RIGHT - LEFT) * offset, 2), lane.y,
                    languages.index(article.language), article.id == first_id)
        lane.marks.append(mark)
        marks[article.id] = mark
    arrows = [
        Arrow.between(edge, marks[edge.article_id], marks[edge.cited_article_id])
        for edge in story.citations
        if edge.cited_article_id in marks and edge.article_id in marks and edge.cited_article_id != edge.article_id
    ]
    height = TOP + LANE_HEIGHT * max(len(lanes) - 1, 0) + BOTTOM
    return Timeline(list(lanes.values()), arrows, start, end, height, languages)
