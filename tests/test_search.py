"""Full-text search: the query syntax, its renderings, and ``GET /v1/articles?q=`` over real HTTP on
SQLite (FTS5 kept by triggers) and PostgreSQL (generated tsvector column, GIN index)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import select

from service.db import alembic_config, create_engine, migrate_async, session_factory
from service.models import Article, ExtractionStatus, utcnow
from service.search import SearchQuery, SearchSyntaxError, Term, parse
from tests.conftest import empty_database
from tests.test_api import assert_problem


def T(*words: str) -> Term:
    return Term(tuple(words))


def test_list_statements_are_cached_by_shape_not_by_language_code():
    """A ``lang`` filter is normalised as stored (``DE-ch`` → ``de``) before the statement cache;
    the cache keys on the search configuration (PostgreSQL), never on the code: ``de`` and ``fr``
    share a statement on SQLite, where the language plays no part in the search."""
    from service.storage.articles import _list_shape

    def shape(dialect: str, lang: str):
        return _list_shape(dialect, limit=5, q=parse("haus"), feed_id=None, lang=lang, since=None, until=None, after=None,
                           story_id=None)

    for dialect in ("sqlite", "postgresql"):
        (de, params), (de_ch, _) = shape(dialect, "de"), shape(dialect, "DE-ch")
        assert de is de_ch and params["lang"] == "de"
    assert shape("sqlite", "fr")[0] is shape("sqlite", "de")[0]
    assert shape("postgresql", "fr")[0] is not shape("postgresql", "de")[0]
    assert shape("postgresql", "xx")[0] is shape("postgresql", "yy")[0]  # both 'simple'


@pytest.mark.parametrize(
    ("text", "required", "excluded"),
    [
        ("flood zurich", [[T("flood")], [T("zurich")]], []),
        ('"climate summit" paris', [[T("climate", "summit")], [T("paris")]], []),
        ("climate -paris", [[T("climate")]], [T("paris")]),
        ('sport -"world cup"', [[T("sport")]], [T("world", "cup")]),
        ("paris OR berlin", [[T("paris"), T("berlin")]], []),
        ("summit paris OR berlin OR rome", [[T("summit")], [T("paris"), T("berlin"), T("rome")]], []),
        ("paris or berlin", [[T("paris")], [T("or")], [T("berlin")]], []),  # lower-case "or" is a word
        ("OR paris OR", [[T("paris")]], []),  # stray OR ignored
        ("flood AND zurich", [[T("flood")], [T("zurich")]], []),  # AND spelt out is the implicit AND
        ("flood and zurich", [[T("flood")], [T("and")], [T("zurich")]], []),  # lower case: a word
        ("paris OR -berlin", [[T("paris")]], [T("berlin")]),  # OR joins only kept terms
        ("E-Mail Straße", [[T("e", "mail")], [T("straße")]], []),  # punctuation splits words; lower case
        ('"unclosed phrase here', [[T("unclosed", "phrase", "here")]], []),
        ("flood flood -x -x", [[T("flood")]], [T("x")]),  # repeats collapse
    ],
)
def test_parse(text, required, excluded):
    assert parse(text) == SearchQuery(tuple(tuple(g) for g in required), tuple(excluded))


def test_renderings():
    query = parse('climate "world cup" paris OR berlin -sport')
    assert query.to_tsquery() == "('climate') & ('world' <-> 'cup') & ('paris' | 'berlin') & !('sport')"
    assert query.to_fts5() == '(("climate") AND ("world cup") AND ("paris" OR "berlin")) NOT ("sport")'
    assert parse("a").to_fts5() == '("a")'


def test_pair_phrases_are_the_phrases_every_match_contains():
    query = parse('"climate summit" paris "world cup" OR "euro final" -"match report" "Three Word Phrase"')
    assert query.pair_phrases() == ["climate summit", "three word phrase"]  # not an OR's, nor an excluded one
    assert query.render("postgresql")["q_pairs"] == ["climate summit", "three word phrase"]
    assert parse("climate summit").pair_phrases() == []


@pytest.mark.parametrize(("text", "says"), [
    ("", "the search is empty"), ("   ", "the search is empty"), ("-climate", "not excluded"), ('-"a b" OR', "not excluded"),
    ("?!", "punctuation"), ('"', "a quote only opens or closes a phrase"), ('""', "words between the quotes"),
    ('" ?"', "words between the quotes"), (" ".join(f"w{i}" for i in range(33)), "at most 32"),
])
def test_unsearchable_queries_raise_saying_why(text, says):
    with pytest.raises(SearchSyntaxError, match=re.escape(says)):
        parse(text)


@pytest.mark.parametrize("path", ["/v1/articles", "/v1/stories"])
async def test_a_lone_quote_is_a_422_saying_so_and_an_unclosed_phrase_runs_to_the_end(api, sessions, path):
    """On SQLite and PostgreSQL alike (one parser): ``q="`` is a 422 naming the quote (before: "a
    search needs at least one word that is not excluded", though nothing was excluded), and a
    quote left open reads as a phrase to the end of the query, as ``websearch_to_tsquery`` does."""
    await _add(sessions, *MATRIX_ARTICLES)
    with httpx.Client(base_url=api) as client:
        problem = client.get(path, params={"q": '"'}).json()
        assert problem["status"] == 422 and "a quote only opens or closes a phrase" in problem["detail"]
        if path == "/v1/articles":
            assert set(_search(client, '"climate summit')) == {"Flood warning in Zurich", "Climate summit opens in Paris"}


BASE = datetime(2024, 5, 1, tzinfo=UTC)


async def _add(sessions, *articles: tuple[str, str, str | None]) -> dict[str, int]:
    """Store (title, text, language) articles one hour apart, the first oldest; returns title → id."""
    ids = {}
    async with sessions() as session:
        for i, (title, text, language) in enumerate(articles):
            moment = BASE + timedelta(hours=i)
            article = Article(canonical_url=f"https://example.org/s/{i}-{title}", title=title, text=text, language=language,
                              published_at=moment, sort_at=moment, first_seen_at=utcnow(),
                              extraction_status=ExtractionStatus.ok)
            session.add(article)
            await session.flush()
            ids[title] = article.id
        await session.commit()
    return ids


def _search(client: httpx.Client, q: str, **params) -> list[str]:
    response = client.get("/v1/articles", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [a["title"] for a in response.json()["items"]]


MATRIX_ARTICLES = [
    ("Flood warning in Zurich", "Rivers rose after heavy rain. The climate summit was postponed.", "en"),
    ("Climate summit opens in Paris", "Leaders met to discuss emissions.", "en"),
    ("Summit on climate in Berlin", "Climate policy and the summit agenda.", "en"),
    ("Football world cup final", "Sport fans in Paris celebrated.", "en"),
    ("Markets in Berlin", "Shares rose. Sport sponsors gained.", "en"),
]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("climate", {"Flood warning in Zurich", "Climate summit opens in Paris", "Summit on climate in Berlin"}),
        ("climate summit", {"Flood warning in Zurich", "Climate summit opens in Paris", "Summit on climate in Berlin"}),
        ('"climate summit"', {"Flood warning in Zurich", "Climate summit opens in Paris"}),
        ('"summit climate"', set()),
        ("climate -paris", {"Flood warning in Zurich", "Summit on climate in Berlin"}),
        ("paris OR berlin", {"Climate summit opens in Paris", "Summit on climate in Berlin", "Football world cup final",
                             "Markets in Berlin"}),
        ("summit paris OR berlin", {"Climate summit opens in Paris", "Summit on climate in Berlin"}),
        ('sport -"world cup"', {"Markets in Berlin"}),
        ("floods", {"Flood warning in Zurich"}),  # stemmed on both sides
        ("FLOOD Warning", {"Flood warning in Zurich"}),
        ("rivers rain -zurich", set()),
        ("volcano", set()),
    ],
)
async def test_search_syntax_matrix(api, sessions, q, expected):
    await _add(sessions, *MATRIX_ARTICLES)
    with httpx.Client(base_url=api) as client:
        assert set(_search(client, q)) == expected


async def test_relevance_then_recency_and_cursor_pages(api, sessions):
    # Oldest first: a title match (older) must beat a text-only match (newer); equal matches go newest first.
    ids = await _add(
        sessions,
        ("Glacier melt accelerates", "Scientists measured the ice.", "en"),
        *[(f"Report {i}", "A short note on the glacier.", "en") for i in range(7)],
    )
    with httpx.Client(base_url=api) as client:
        first = client.get("/v1/articles", params={"q": "glacier", "limit": 3}).json()
        assert first["items"][0]["title"] == "Glacier melt accelerates"
        seen, page = [], first
        while True:
            seen += [a["title"] for a in page["items"]]
            if not page["next_cursor"]:
                break
            page = client.get("/v1/articles", params={"q": "glacier", "limit": 3, "cursor": page["next_cursor"]}).json()
        assert seen == ["Glacier melt accelerates", *[f"Report {i}" for i in reversed(range(7))]]

        plain_cursor = client.get("/v1/articles", params={"limit": 1}).json()["next_cursor"]
        assert_problem(client.get("/v1/articles", params={"q": "glacier", "cursor": plain_cursor}), 422)  # another query
        assert_problem(client.get("/v1/articles", params={"cursor": first["next_cursor"]}), 422)
        assert_problem(client.get("/v1/articles", params={"q": "-glacier"}), 422)
        assert_problem(client.get("/v1/articles", params={"q": "x" * 600}), 422)
        # Filters combine with search.
        assert _search(client, "glacier", since="2024-05-01T06:00:00Z") == ["Report 6", "Report 5"]
        assert len(ids) == 8


async def test_the_database_keeps_the_index_current(api, sessions):
    ids = await _add(sessions, ("Old headline about trains", "Delays on the western line.", "en"))
    with httpx.Client(base_url=api) as client:
        assert _search(client, "trains") == ["Old headline about trains"]
        async with sessions() as session:  # an ORM update, as the extractor does: no search code involved
            article = await session.get(Article, ids["Old headline about trains"])
            article.title, article.text = "New caption about ferries", "Crossings cancelled."
            await session.commit()
        assert _search(client, "trains") == [] and _search(client, "delays") == []
        assert _search(client, "ferries crossings") == ["New caption about ferries"]
        async with sessions() as session:  # a lease update does not disturb the index
            await session.exec(sa.update(Article).values(lease_owner="x", extraction_status="ok"))
            await session.commit()
        assert _search(client, "ferries") == ["New caption about ferries"]
        async with sessions() as session:
            await session.delete(await session.get(Article, ids["Old headline about trains"]))
            await session.commit()
        assert _search(client, "ferries") == []


PHRASE_ARTICLES = [
    ("Climate summit talks", "Delegates arrived.", "en"),
    ("Summit climate", "Words the other way round.", "en"),
    ("Notes", "The climate and the summit, far apart; a summit on climate.", "en"),
    ("Paris diary", "The climate summit in Paris ended. Sport later.", "en"),
    ("Quiet day", "Nothing about either.", "en"),
]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('"climate summit"', {"Climate summit talks", "Paris diary"}),
        ('"climate summits"', {"Climate summit talks", "Paris diary"}),  # stemmed, still adjacent
        ('"summit climate"', {"Summit climate"}),
        ('"climate summit" -sport', {"Climate summit talks"}),
        ('"climate summit" -"in paris"', {"Climate summit talks"}),
        ('"summit in paris"', {"Paris diary"}),
        ('"climate summit" "summit in paris"', {"Paris diary"}),
        ('"climate summit talks"', {"Climate summit talks"}),
        ('"summit talks climate"', set()),
        ('"summit climate" OR "climate summit"', {"Summit climate", "Climate summit talks", "Paris diary"}),
        ('"climate and summit"', set()),  # "the climate and the summit": a word between
        ("climate summit", {"Climate summit talks", "Summit climate", "Notes", "Paris diary"}),
    ],
)
async def test_phrases_match_only_the_exact_phrase(api, sessions, q, expected):
    await _add(sessions, *PHRASE_ARTICLES)
    with httpx.Client(base_url=api) as client:
        assert set(_search(client, q)) == expected


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL text search configurations")
    return database_url


async def test_postgres_stems_in_the_articles_language(postgres_only, api, sessions):
    """What PostgreSQL 'german' (Snowball) really does: Häuser and Haus share the stem 'haus';
    gelaufen stays 'gelauf', apart from laufen's 'lauf' (no irregular forms). An English article is
    stemmed in English; one without a language ('simple') is not stemmed at all."""
    await _add(
        sessions,
        ("Die Häuser am See", "Viele Menschen sind gelaufen.", "de"),
        ("Runners were running", "The houses emptied.", "en"),
        ("Running notes", "Unstemmed text.", None),
    )
    with httpx.Client(base_url=api) as client:
        assert _search(client, "Haus") == ["Die Häuser am See"]
        assert _search(client, "häusern") == ["Die Häuser am See"]
        assert _search(client, "laufen") == []
        assert _search(client, "gelaufen") == ["Die Häuser am See"]
        assert _search(client, "house") == ["Runners were running"]
        assert set(_search(client, "run")) == {"Runners were running"}  # 'simple' keeps "running" as is
        assert set(_search(client, "running")) == {"Runners were running", "Running notes"}
        assert _search(client, "Haus", lang="de") == ["Die Häuser am See"]
        assert _search(client, "Haus", lang="en") == []
        # German stop words are dropped from a query in a German article's configuration only.
        assert _search(client, "die häuser") == ["Die Häuser am See"]


@pytest.fixture(params=["sqlite", "postgresql"])
async def url_at_0005(request, tmp_path) -> str:
    """A database migrated to revision 0005 only (before search)."""
    url = await empty_database(request.param, tmp_path)
    import asyncio

    await asyncio.to_thread(command.upgrade, alembic_config(url), "0005")
    return url


async def test_migration_0006_indexes_existing_articles(url_at_0005):
    engine = create_engine(url_at_0005)
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO articles (title, text, authors, first_seen_at, sort_at, extraction_status, fetch_attempts, language) "
                "VALUES ('Archived dispatch', 'Written before search existed.', '[]', :now, :now, 'ok', 0, 'en')"
            ), {"now": datetime.now(UTC).replace(tzinfo=None) if url_at_0005.startswith("sqlite") else datetime.now(UTC)})
        await migrate_async(url_at_0005)
        from service.storage.articles import list_query

        async with sessions() as session:
            rows = (await session.exec(list_query(engine.dialect.name, limit=5, q=parse("dispatch")))).all()
            assert [r.title for r in rows] == ["Archived dispatch"]
            assert (await session.exec(select(Article.title))).all() == ["Archived dispatch"]
    finally:
        await engine.dispose()


async def test_postgres_index_finds_a_phrase_by_its_word_pairs(postgres_only, sessions):
    """Migration 0011: the GIN index holds a token per pair of adjacent words, so the articles it
    finds for a phrase are those holding the pair, not all that hold both words."""
    await _add(
        sessions,
        *[(f"Apart {i}", f"Climate talks went on, then a summit number {i}.", "en") for i in range(20)],
        ("Together", "The climate summits opened.", "en"),
        ("Brand", "Die Häuser brennen am See.", "de"),
        ("Kein Brand", "Die Häuser am See brennen nicht.", "de"),
    )
    from service.storage.articles import list_query

    async with sessions() as session:
        await session.exec(sa.text("SET LOCAL enable_seqscan = off"))  # 22 rows: make the planner use the index

        async def candidates_and_titles(q: str) -> tuple[int, set[str]]:
            statement = list_query("postgresql", limit=50, q=parse(q))
            compiled = str(statement.compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}))
            plan = [r[0] for r in (await session.exec(sa.text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + compiled)))]
            scans = [line for line in plan if "Bitmap Index Scan on ix_articles_search" in line]
            assert len(scans) == 1, plan
            titles = {r.title for r in (await session.exec(statement))}
            return int(scans[0].split("actual rows=")[1].split()[0]), titles

        assert await candidates_and_titles('"climate summit"') == (1, {"Together"})
        assert await candidates_and_titles("climate summit") == (21, {*(f"Apart {i}" for i in range(20)), "Together"})
        assert await candidates_and_titles('"häusern brennen"') == (1, {"Brand"})  # stemmed in German
        assert await candidates_and_titles('"summit climate"') == (0, set())
