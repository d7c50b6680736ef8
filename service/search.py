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
  ``tsvector`` column with a GIN index (§12.2.2 "Creating Indexes"; migration 0006) that also
  holds a token per pair of adjacent words (migration 0011), looked up for the query's phrases.
* SQLite: an FTS5 query string (``"phrase"``, ``AND``, ``OR``, ``NOT``; SQLite FTS5 documentation
  §3 "Full-text Query Syntax") against an external-content FTS5 table kept current by triggers
  (FTS5 §4.4.3 "External Content Tables").

The SQL of a search (conditions, relevance) is ``service.storage.search``'s. The database objects
behind the search are listed in ``DATABASE_MAINTAINED`` so that schema comparison (Alembic
autogenerate) skips exactly those and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
shadow tables on SQLite; generated ``tsvector`` column and its GIN index, since 0011 on the vector
with word pairs, on PostgreSQL). They are not SQLModel columns, so schema comparison must skip them
by these names."""


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

    def pair_phrases(self) -> list[str]:
        """The phrases every match contains, words joined by spaces (``["climate summit"]``): those
        standing alone in a required group (a phrase in an ``OR`` group may be absent). On
        PostgreSQL their word-pair tokens narrow the candidates the index finds (migration 0011)."""
        return [" ".join(group[0].words) for group in self.required if len(group) == 1 and len(group[0].words) > 1]

    def render(self, dialect: str) -> dict[str, str | list[str]]:
        """The values of the bound parameters ``article_match(dialect, None)`` leaves in a statement:
        ``q``, the query as ``to_tsquery`` text on ``"postgresql"`` (and ``q_candidates``,
        ``to_tsquery_candidates()``, and ``q_pairs``, ``pair_phrases()``), else as an FTS5 MATCH
        string."""
        if dialect == "postgresql":
            return {"q": self.to_tsquery(), "q_candidates": self.to_tsquery_candidates(), "q_pairs": self.pair_phrases()}
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

    Raises ``SearchSyntaxError`` when no word is left to look for (empty, punctuation only, quotes
    with no word between them such as a lone ``"``, or only excluded terms; the message says which)
    or when there are more than ``MAX_TERMS`` terms. Never raises for odd input otherwise: an
    unclosed quote runs to the end (as PostgreSQL's ``websearch_to_tsquery`` reads it), a stray
    ``OR`` or ``-`` is ignored. One parser for both databases, so SQLite and PostgreSQL answer alike."""
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
        raise SearchSyntaxError(_no_word(text, excluded))
    groups = dict.fromkeys(tuple(dict.fromkeys(g)) for g in required)
    return SearchQuery(tuple(groups), tuple(dict.fromkeys(excluded)))


def _no_word(text: str, excluded: list[Term]) -> str:
    """Why ``text`` has nothing to search for, in the user's terms."""
    if excluded:
        return "a search needs at least one word that is not excluded (-word and -\"a phrase\" only leave articles out)"
    if '"' in text:
        return (f"no word to search for in {text.strip()!r}: a quote only opens or closes a phrase (\"climate summit\"; "
                "one left open runs to the end of the search), so it needs words between the quotes")
    if text.strip():
        return f"no word to search for in {text.strip()!r}: punctuation, - and OR alone are not words"
    return "the search is empty: give at least one word"


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
