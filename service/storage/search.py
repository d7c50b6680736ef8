"""Full-text search in SQL: the conditions and relevance of a parsed query (``service.search``, the
query language) on each database — PostgreSQL ``tsvector`` with a GIN index, SQLite FTS5 — over
articles (title and text). The database objects are migration 0006's (0009's storage, 0011's
word pairs)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from service.models import Article, table_of
from service.search import PG_CONFIGS, PG_DEFAULT_CONFIG, SQLITE_FTS_TABLE, SearchQuery


def pg_regconfig(language: sa.ColumnElement) -> sa.ColumnElement:
    """``newsloom_regconfig(language)``: the text search configuration of an ISO 639-1 code (an SQL
    function created by migration 0006, declared IMMUTABLE so generated columns may use it)."""
    return sa.func.newsloom_regconfig(language, type_=sa.types.NullType())


@dataclass(frozen=True)
class Match:
    """A full-text condition and its relevance score for one dialect: ``where`` to filter, ``rank``
    (higher is more relevant) to order by and to put in cursors, and ``join``: what to join the
    searched table to (the FTS5 table on SQLite, the rendered queries on PostgreSQL) and on what."""

    where: sa.ColumnElement
    rank: sa.ColumnElement
    join: tuple[sa.FromClause, sa.ColumnElement] | None = None


def postgres_match(rendered: sa.ColumnElement[str], candidates: sa.ColumnElement[str], pairs: sa.ColumnElement,
                   vector: sa.ColumnElement, language: sa.ColumnElement, configs: list[str] | None = None) -> Match:
    """Match a query against the ``tsvector`` column ``vector`` whose rows were indexed with the
    configuration of their ``language`` column (``newsloom_regconfig``), by a GIN index on
    ``newsloom_with_pairs(vector)`` (migration 0011). ``rendered``: the query as ``to_tsquery``
    text (``SearchQuery.to_tsquery``), ``candidates`` its weaker form
    (``SearchQuery.to_tsquery_candidates``), ``pairs`` the phrases every match contains
    (``SearchQuery.pair_phrases``, a ``text[]``), all SQL values (literals, or bound parameters of a
    statement run again with other queries).

    The exact condition is ``vector @@ <the query in the row's own configuration>``: a ``CASE`` over
    the configurations whose branches, ``to_tsquery('german', …)``, PostgreSQL folds to constants
    when it plans the statement (PostgreSQL manual §12.3.2 "Parsing Queries"). ``configs`` (names
    of text search configurations, ``PG_CONFIGS`` values, for a ``lang`` filter) narrows the
    configurations; a row of another has none, and does not match. It is evaluated only on the rows the GIN index finds (§12.9 "Preferred Index
    Types for Text Search") with the union (``|``) of the distinct non-empty renderings of
    ``candidates`` in those configurations, an InitPlan evaluated once per statement: a query
    without phrases or negations, which the index answers without reading a row, so that each
    candidate's vector is read and matched once, against its own configuration's query. (The union
    of the exact renderings, as before, needed a recheck of every candidate against all 12 of
    them: 0.26 s for a two-word phrase with an exclusion at 100,000 articles; joining each row to
    its rendering let the planner loop over the configurations, 0.9 s.) Each configuration's
    candidate query also requires the word-pair tokens of ``pairs`` in that configuration
    (``newsloom_phrase_pairs``), which the index holds for every pair of adjacent positions: a
    phrase of two common words then reads the articles holding the pair instead of every one
    holding both words (705 instead of 12,874, 318 → 21 ms a page at 100,000 articles,
    ``bench/api.py``). Where a
    configuration drops every required word as a stop word, its exact rendering stands in the
    union instead.
    Rank: ``ts_rank_cd`` (cover density, §12.3.3) with the default weights, so title words (A)
    count more than text (B)."""
    # Imported here: a service on SQLite never loads the PostgreSQL dialect (2 MiB).
    from sqlalchemy.dialects.postgresql import TSQUERY

    configs = sorted({*(configs if configs is not None else PG_CONFIGS.values()), PG_DEFAULT_CONFIG})
    array: sa.ColumnClause = sa.literal_column("ARRAY[" + ", ".join(f"'{c}'" for c in configs) + "]::regconfig[]")
    cfg = sa.func.unnest(array).table_valued("cfg").render_derived(name="search_cfg")
    weak = sa.func.to_tsquery(cfg.c.cfg, candidates, type_=TSQUERY)
    narrowed = sa.func.coalesce(weak.op("&&")(sa.func.newsloom_phrase_pairs(cfg.c.cfg, pairs, type_=TSQUERY)), weak)
    exact = sa.func.to_tsquery(cfg.c.cfg, rendered, type_=TSQUERY)
    renderings = sa.select(sa.case((sa.func.numnode(weak) > 0, narrowed), else_=exact).label("query")).cte("search_query")
    operand = sa.literal("(") + sa.cast(renderings.c.query, sa.Text) + sa.literal(")")
    union = (
        sa.select(sa.func.string_agg(sa.distinct(operand), sa.literal(" | ")).filter(sa.func.numnode(renderings.c.query) > 0))
        .scalar_subquery()
    )
    named: list[sa.ColumnClause] = [sa.literal_column(f"'{c}'::regconfig") for c in configs]  # names from PG_CONFIGS: no quoting issue
    own = sa.case(*((c, sa.func.to_tsquery(c, rendered, type_=TSQUERY)) for c in named), value=pg_regconfig(language))
    indexed = sa.func.newsloom_with_pairs(vector, type_=vector.type)
    where = sa.and_(indexed.op("@@")(sa.cast(union, TSQUERY)), vector.op("@@")(own))
    rank = sa.func.ts_rank_cd(vector, own, type_=sa.Float)
    return Match(where=where, rank=rank)


def sqlite_match(rendered: sa.ColumnElement[str], rowid_of: sa.ColumnElement, fts_table: str = SQLITE_FTS_TABLE,
                 weights: tuple[float, ...] = (3.0, 1.0)) -> Match:
    """Match a query against the FTS5 table ``fts_table`` whose rowid is ``rowid_of`` (joined).
    ``rendered``: the query's FTS5 string as an SQL value (a literal or a bound parameter).

    Rank: minus FTS5's ``bm25()`` (so higher is better, as on PostgreSQL) with per-column
    ``weights`` (FTS5 §5.1.1 "The bm25() function"); bm25 uses corpus statistics, so scores move as
    rows are added."""
    fts = sa.table(fts_table, sa.column("rowid"))
    table_ref: sa.ColumnClause = sa.literal_column(fts_table)
    where = table_ref.op("MATCH")(rendered)
    rank = -sa.func.bm25(table_ref, *(sa.literal(w) for w in weights), type_=sa.Float)
    return Match(where=where, rank=rank, join=(fts, fts.c.rowid == rowid_of))


def article_match(dialect: str, query: SearchQuery | None, configs: list[str] | None = None) -> Match:
    """The ``Match`` of ``query`` over articles (title and text) on ``dialect`` ("postgresql" or
    "sqlite"); with ``query`` None, of the query given when the statement runs, as the values of
    its bound parameters (``SearchQuery.render``). ``configs``: PostgreSQL only, see
    ``postgres_match``."""
    values = query.render(dialect) if query is not None else None

    def value(name: str, type_: sa.types.TypeEngine | None = None) -> sa.ColumnElement:
        type_ = type_ if type_ is not None else sa.String()
        return sa.literal(values[name], type_) if values is not None else sa.bindparam(name, type_=type_)

    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR

        vector = sa.literal_column("articles.search_vector", type_=TSVECTOR)
        phrases = ARRAY(sa.Text)  # cast: typed even as an empty literal (``literal_binds``, in EXPLAIN)
        return postgres_match(value("q"), value("q_candidates"), sa.cast(value("q_pairs", phrases), phrases), vector,
                              table_of(Article).c.language, configs)
    return sqlite_match(value("q"), table_of(Article).c.id)
