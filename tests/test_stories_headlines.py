"""Headline-only articles (feeds without page text) through the real pipeline: feeds served over
HTTP on 127.0.0.1, polled by the real poller, linked by its linker (SQLite, and PostgreSQL when
configured). Issue 13, user trial of 2026-12-03: unrelated Slovak headlines formed one story on the
title encoder's cosine, which means nothing in a language it was not trained on, and very short
English headlines joined on one shared word (``service.stories.headlines``)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from sqlmodel import select

from service.models import Article
from service.stories import headlines
from tests.test_stories_pipeline import _poll

# Six events on one day in Slovakia, written for this test: no name or figure in common.
SLOVAK_UNRELATED = [
    ("Hasiči v Prešove celú noc bojovali s požiarom skladu pneumatík pri železničnej stanici",
     "Oheň zachvátil halu s tisíckami pneumatík, obyvatelia okolitých ulíc museli zatvoriť okná."),
    ("Národná banka Slovenska zhoršila odhad rastu ekonomiky na budúci rok",
     "Centrálna banka očakáva, že hospodárstvo spomalí pre vysoké ceny energií a slabší export."),
    ("Slovenskí hokejisti zdolali na turnaji v Helsinkách domáce Fínsko po predĺžení",
     "Víťazný gól strelil v tretej minúte predĺženia útočník, ktorý sa vrátil po zranení."),
    ("V Tatrách napadlo za noc pol metra snehu, lanovky spúšťajú sezónu skôr",
     "Strediská na severe krajiny otvoria zjazdovky už tento víkend, oznámili prevádzkovatelia."),
    ("Nemocnica v Nitre otvorila nové oddelenie detskej chirurgie za osem miliónov eur",
     "Pacienti sa do moderných priestorov presťahujú začiatkom budúceho mesiaca."),
    ("Vedci z bratislavskej univerzity objavili v jaskyni neznámy druh chrobáka",
     "Drobný slepý chrobák žije len v úplnej tme a živí sa plesňami na stenách jaskyne."),
]

# One event told twice in other words, sharing the names Polaček, Hornád and Ťahanovce.
SLOVAK_ONE_EVENT = [
    ("Primátor Polaček otvoril v Košiciach nový most cez Hornád",
     "Most za dvanásť miliónov eur spojí sídlisko Ťahanovce s centrom mesta."),
    ("Nový most cez Hornád je otvorený, Polaček sľubuje menej zápch",
     "Stavba spájajúca Ťahanovce s centrom stála podľa mesta dvanásť miliónov eur."),
]

# Short headlines sharing only the word "link".
ENGLISH_SHORT = [("Mailto link syntax", None), ("Spaces in link", None), ("Data link layer", None), ("JavaScript link handlers", None)]


def _feed(server, path: str, lang: str, items: list[tuple[str, str | None]]) -> str:
    """An RSS feed of headline-only items (no link to a page), one an hour from 08:00 GMT."""
    body = "".join(
        f'<item><title>{escape(title)}</title><guid isPermaLink="false">{path}-{i}</guid>'
        + (f"<description>{escape(summary)}</description>" if summary else "")
        + f"<pubDate>Mon, 06 May 2024 {8 + i:02d}:00:00 GMT</pubDate></item>"
        for i, (title, summary) in enumerate(items)
    )
    return server.add(path, '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
                      f"<link>https://{path.strip('/').replace('.xml', '')}.example/</link><language>{lang}</language>"
                      f"{body}</channel></rss>", Content_Type="application/rss+xml")


async def _stories(sessions) -> dict[str, int | None]:
    async with sessions() as session:
        rows = (await session.exec(select(Article))).all()
    assert rows and all(r.linked_at is not None for r in rows)
    return {r.title: r.story_id for r in rows}


async def test_unrelated_headlines_in_a_language_the_encoder_does_not_cover_stay_apart(server, poller, sessions):
    assert "sk" not in headlines.COVERED
    await _poll(poller, sessions, [_feed(server, "/sk.xml", "sk", SLOVAK_UNRELATED)])
    stories = await _stories(sessions)
    assert sorted(stories) == sorted(title for title, _summary in SLOVAK_UNRELATED)
    assert None not in stories.values()
    assert len(set(stories.values())) == len(SLOVAK_UNRELATED), stories


async def test_two_headlines_of_one_event_in_an_uncovered_language_that_share_names_link(server, poller, sessions):
    await _poll(poller, sessions, [_feed(server, "/sk.xml", "sk", SLOVAK_ONE_EVENT + SLOVAK_UNRELATED[:2])])
    stories = await _stories(sessions)
    first, second = (stories[title] for title, _summary in SLOVAK_ONE_EVENT)
    assert first is not None and first == second
    assert len(set(stories.values())) == 3, stories


async def test_short_unrelated_headlines_sharing_one_word_stay_apart(server, poller, sessions):
    await _poll(poller, sessions, [_feed(server, "/en.xml", "en", ENGLISH_SHORT)])
    stories = await _stories(sessions)
    assert sorted(stories) == sorted(title for title, _summary in ENGLISH_SHORT)
    assert None not in stories.values()
    assert len(set(stories.values())) == len(ENGLISH_SHORT), stories
