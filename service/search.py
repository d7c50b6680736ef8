"""Full-text search: one query syntax, parsed once, rendered for PostgreSQL and for SQLite.

Syntax (documented in README.md, "Search"):

* ``flood zurich`` — every word must occur (AND);
* ``"climate summit"`` — a phrase: the words next to each other, in this order;
* ``-sport`` or ``-"world cup"`` — exclude articles containing the word or phrase;
* ``paris OR berlin`` — either term; ``OR`` (upper case) joins the two terms beside it and binds
  tighter than the implicit AND, so ``summit paris OR berlin`` means summit AND (paris OR berlin).
* ``flood AND zurich`` — the same as ``flood zurich``: ``AND`` (upper case) is the implicit
  operator spelt out, not a word to look for.

Words are runs of letters and digits (anything else separates words, so ``e-mail`` is the phrase
``"e mail"``). A query needs at least one word that is not excluded.

Renderings:

* PostgreSQL: ``to_tsquery`` text (``'w'``, ``<->`` for phrases, ``&``, ``|``, ``!``), normalised
  by the text search configuration of each article's language (PostgreSQL manual, §12.3.2
  "Parsing Queries" and §12.1.2 "Basic Text Matching"). Articles are indexed by a generated
  ``tsvector`` column with a GIN index (§12.2.2 "Creating Indexes"; migration 0006).
* SQLite: an FTS5 query string (``"phrase"``, ``AND``, ``OR``, ``NOT``; SQLite FTS5 documentation
  §3 "Full-text Query Syntax") against an external-content FTS5 table kept current by triggers
  (FTS5 §4.4.3 "External Content Tables").

The database objects behind the search are listed in ``DATABASE_MAINTAINED`` so that schema
comparison (Alembic autogenerate) skips exactly those and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from service.errors import InputError

MAX_TERMS = 32
"""Most terms (words or phrases, excluded ones included) one query may have."""

# ISO 639-1 code -> PostgreSQL text search configuration, for the configurations every supported
# PostgreSQL (12 and later) ships; anything else is indexed with 'simple' (lower-cased, no
# stemming, no stop words). Migration 0006 holds the same map in the SQL function
# newsloom_regconfig(text); keep them equal.
PG_CONFIGS: dict[str, str] = {
    "ar": "arabic", "da": "danish", "de": "german", "el": "greek", "en": "english", "es": "spanish",
    "fi": "finnish", "fr": "french", "ga": "irish", "hu": "hungarian", "id": "indonesian", "it": "italian",
    "lt": "lithuanian", "nb": "norwegian", "ne": "nepali", "nl": "dutch", "nn": "norwegian", "no": "norwegian",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}
PG_DEFAULT_CONFIG = "simple"

SQLITE_FTS_TABLE = "articles_fts"
"""The FTS5 table over ``articles.title`` and ``articles.text`` (rowid = ``articles.id``)."""

DATABASE_MAINTAINED: dict[str, set[str] | set[tuple[str, str]]] = {
    "tables": {SQLITE_FTS_TABLE, *(f"{SQLITE_FTS_TABLE}_{s}" for s in ("data", "idx", "docsize", "config", "content"))},
    "columns": {("articles", "search_vector")},
    "indexes": {"ix_articles_search"},
}
"""Schema objects that migration 0006 creates and the database keeps current (FTS5 table and its
shadow tables on SQLite; generated ``tsvector`` column and its GIN index on PostgreSQL). They are
not SQLModel columns, so schema comparison must skip them by these names."""


class SearchSyntaxError(InputError):
    """A query that cannot be searched (no word to look for, or too many terms); the message says why."""


@dataclass(frozen=True)
class Term:
    """One word (``words`` of length 1) or a phrase (several words, adjacent and in order); lower case."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query: every group in ``required`` must match (a group matches when any of its terms
    does), and no term of ``excluded`` may."""

    required: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]

    def to_tsquery(self) -> str:
        """The query as PostgreSQL ``to_tsquery`` input, e.g. ``('a') & ('b' <-> 'c' | 'd') & !('e')``.

        Pass it with a configuration (``to_tsquery('german', …)``) so words are stemmed like the
        documents; stop words drop out (PostgreSQL manual §12.3.2)."""
        parts = ["(" + " | ".join(_pg_term(t) for t in group) + ")" for group in self.required]
        parts += [f"!({_pg_term(t)})" for t in self.excluded]
        return " & ".join(parts)

    def to_tsquery_candidates(self) -> str:
        """A weaker ``to_tsquery`` input that every match of ``to_tsquery()`` also matches (in the
        same configuration): the words of each phrase ANDed instead of adjacent, no exclusions, e.g.
        ``('a') & ('b' & 'c' | 'd')``. Without positions or negations, a GIN index answers it without
        reading the rows (PostgreSQL manual §12.9: phrase matches are rechecked on the table)."""
        return " & ".join("(" + " | ".join(" & ".join(f"'{w}'" for w in t.words) for t in group) + ")" for group in self.required)

    def render(self, dialect: str) -> dict[str, str]:
        """The values of the bound parameters ``article_match(dialect, None)`` leaves in a statement:
        ``q``, the query as ``to_tsquery`` text on ``"postgresql"`` (and ``q_candidates``,
        ``to_tsquery_candidates()``), else as an FTS5 MATCH string."""
        if dialect == "postgresql":
            return {"q": self.to_tsquery(), "q_candidates": self.to_tsquery_candidates()}
        return {"q": self.to_fts5()}

    def to_fts5(self) -> str:
        """The query as an SQLite FTS5 MATCH string, e.g. ``("a") AND ("b c" OR "d") NOT ("e")``
        (FTS5 §3: strings are phrases; NOT binds tighter than AND, AND tighter than OR, so every
        group is bracketed)."""
        query = " AND ".join("(" + " OR ".join(_fts_term(t) for t in group) + ")" for group in self.required)
        if self.excluded:
            query = f"({query}) NOT (" + " OR ".join(_fts_term(t) for t in self.excluded) + ")"
        return query


def _pg_term(term: Term) -> str:
    return " <-> ".join(f"'{w}'" for w in term.words)  # words are letters and digits only: no quoting issue


def _fts_term(term: Term) -> str:
    return '"' + " ".join(term.words) + '"'


_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")


def parse(text: str) -> SearchQuery:
    """Parse the search syntax (module docstring) into a ``SearchQuery``.

    Raises ``SearchSyntaxError`` when no word is left to look for (empty, punctuation only, or only
    excluded terms) or when there are more than ``MAX_TERMS`` terms. Never raises for odd input
    otherwise: an unclosed quote runs to the end, a stray ``OR`` or ``-`` is ignored."""
    items: list[tuple[str, Term | None]] = []  # ("+", term), ("-", term) or ("OR", None)
    for match in _TOKEN.finditer(text):
        minus, phrase, bare = match.groups()
        if bare == "OR":
            items.append(("OR", None))
            continue
        if bare == "AND":  # the implicit operator, spelt out
            continue
        if bare is not None:
            minus, phrase = ("-", bare[1:]) if bare.startswith("-") else ("", bare)
        words = tuple(w.lower() for w in _WORD.findall(phrase))
        if words:
            items.append(("-" if minus else "+", Term(words)))
    if sum(kind != "OR" for kind, _ in items) > MAX_TERMS:
        raise SearchSyntaxError(f"a search may have at most {MAX_TERMS} words or phrases")
    required: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    for i, (kind, term) in enumerate(items):
        if kind == "OR":
            prev_positive = i > 0 and items[i - 1][0] == "+"
            next_positive = i + 1 < len(items) and items[i + 1][0] == "+"
            join_next = prev_positive and next_positive
            continue
        assert term is not None
        if kind == "-":
            excluded.append(term)
        elif join_next and required:
            required[-1].append(term)
        else:
            required.append([term])
        join_next = False
    if not required:
        raise SearchSyntaxError("a search needs at least one word that is not excluded")
    groups = dict.fromkeys(tuple(dict.fromkeys(g)) for g in required)
    return SearchQuery(tuple(groups), tuple(dict.fromkeys(excluded)))


# --- SQL for one dialect ------------------------------------------------------------------------


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


def postgres_match(rendered: sa.ColumnElement[str], candidates: sa.ColumnElement[str], vector: sa.ColumnElement,
                   language: sa.ColumnElement, languages: list[str] | None = None) -> Match:
    """Match a query against the ``tsvector`` column ``vector`` whose rows were indexed with the
    configuration of their ``language`` column (``newsloom_regconfig``). ``rendered``: the query as
    ``to_tsquery`` text (``SearchQuery.to_tsquery``), ``candidates`` its weaker form
    (``SearchQuery.to_tsquery_candidates``), both SQL values (literals, or bound parameters of a
    statement run again with other queries).

    The exact condition is ``vector @@ <the query in the row's own configuration>``: a ``CASE`` over
    the configurations whose branches, ``to_tsquery('german', …)``, PostgreSQL folds to constants
    when it plans the statement (PostgreSQL manual §12.3.2 "Parsing Queries"). ``languages`` (ISO
    639-1 codes, for a ``lang`` filter) narrows the configurations; a row of another has none, and
    does not match. It is evaluated only on the rows the GIN index finds (§12.9 "Preferred Index
    Types for Text Search") with the union (``|``) of the distinct non-empty renderings of
    ``candidates`` in those configurations, an InitPlan evaluated once per statement: a query
    without phrases or negations, which the index answers without reading a row, so that each
    candidate's vector is read and matched once, against its own configuration's query. (The union
    of the exact renderings, as before, needed a recheck of every candidate against all 12 of
    them: 0.26 s for a two-word phrase with an exclusion at 100,000 articles; joining each row to
    its rendering let the planner loop over the configurations, 0.9 s.) Where a configuration
    drops every required word as a stop word, its exact rendering stands in the union instead.
    Rank: ``ts_rank_cd`` (cover density, §12.3.3) with the default weights, so title words (A)
    count more than text (B)."""
    # Imported here: a service on SQLite never loads the PostgreSQL dialect (2 MiB).
    from sqlalchemy.dialects.postgresql import TSQUERY

    codes = languages if languages is not None else list(PG_CONFIGS)
    configs = sorted({PG_CONFIGS.get(c, PG_DEFAULT_CONFIG) for c in codes} | {PG_DEFAULT_CONFIG})
    array: sa.ColumnClause = sa.literal_column("ARRAY[" + ", ".join(f"'{c}'" for c in configs) + "]::regconfig[]")
    cfg = sa.func.unnest(array).table_valued("cfg").render_derived(name="search_cfg")
    weak = sa.func.to_tsquery(cfg.c.cfg, candidates, type_=TSQUERY)
    exact = sa.func.to_tsquery(cfg.c.cfg, rendered, type_=TSQUERY)
    renderings = sa.select(sa.case((sa.func.numnode(weak) > 0, weak), else_=exact).label("query")).cte("search_query")
    operand = sa.literal("(") + sa.cast(renderings.c.query, sa.Text) + sa.literal(")")
    union = (
        sa.select(sa.func.string_agg(sa.distinct(operand), sa.literal(" | ")).filter(sa.func.numnode(renderings.c.query) > 0))
        .scalar_subquery()
    )
    named: list[sa.ColumnClause] = [sa.literal_column(f"'{c}'::regconfig") for c in configs]  # names from PG_CONFIGS: no quoting issue
    own = sa.case(*((c, sa.func.to_tsquery(c, rendered, type_=TSQUERY)) for c in named), value=pg_regconfig(language))
    where = sa.and_(vector.op("@@")(sa.cast(union, TSQUERY)), vector.op("@@")(own))
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


def article_match(dialect: str, query: SearchQuery | None, languages: list[str] | None = None) -> Match:
    """The ``Match`` of ``query`` over articles (title and text) on ``dialect`` ("postgresql" or
    "sqlite"); with ``query`` None, of the query given when the statement runs, as the values of
    its bound parameters (``SearchQuery.render``)."""
    from service.models import Article, table_of

    values = query.render(dialect) if query is not None else None

    def value(name: str) -> sa.ColumnElement[str]:
        return sa.literal(values[name]) if values is not None else sa.bindparam(name, type_=sa.String)

    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import TSVECTOR

        vector = sa.literal_column("articles.search_vector", type_=TSVECTOR)
        return postgres_match(value("q"), value("q_candidates"), vector, table_of(Article).c.language, languages)
    return sqlite_match(value("q"), table_of(Article).c.id)


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic ``include_name`` hook: skip the FTS5 tables of ``DATABASE_MAINTAINED`` before they
    are reflected."""
    return not (type_ == "table" and name in DATABASE_MAINTAINED["tables"])


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """Alembic ``include_object`` hook: skip the reflected generated column and GIN index of
    ``DATABASE_MAINTAINED`` (they exist only in the database, never in the models)."""
    if not reflected or compare_to is not None:
        return True
    if type_ == "column":
        return (obj.table.name, name) not in DATABASE_MAINTAINED["columns"]
    if type_ == "index":
        return name not in DATABASE_MAINTAINED["indexes"]
    return True
