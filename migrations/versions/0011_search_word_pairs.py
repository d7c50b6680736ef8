"""PostgreSQL: word-pair tokens in the search index, so a phrase narrows the candidates

A phrase (``"climate summit"``) was looked up in the GIN index ``ix_articles_search`` as its words
ANDed, and every article holding both words anywhere was read to check that they stand next to each
other (positions are not in a GIN index; PostgreSQL manual §12.9): two common words, 12,874
candidates for 147 matches, 0.32 s a page at 100,000 articles (``bench/api.py``; now 705 and 21 ms).

The index now holds, besides each article's lexemes, one token per pair of adjacent positions of its
``search_vector``: ``^`` and 12 bits of a hash of the two lexemes in hex (``pair_token``; at most
4,096 such keys). A phrase's pairs, made the same way
from ``to_tsvector`` of the phrase in each configuration (``newsloom_phrase_pairs``), are ANDed into
the query the index answers, and only the articles holding all of them are read and checked for the
exact phrase (``service.storage.search.postgres_match``). The index is on the expression
``newsloom_with_pairs(search_vector)``: about twice the size (``docs/operations.md``); building it
reads every article. SQLite: nothing to do (FTS5 keeps positions in its index).

Why 12 bits: an article of 130 words holds a given token by chance with a probability of about 3 %
(0.2 % with 16 bits), so a phrase of two common words reads 3 % of the articles holding both words
besides its matches; but each article written adds its pairs to the index, and spread over 65,536
keys they cost the database about 0.55 ms more per article stored (5,000 articles in one
transaction), over 4,096 keys about 0.3 ms (0.1 ms of it making the tokens).

Every pair of an article is indexed, a position holding several lexemes paired with each of its
neighbour's; only a phrase's positions of one lexeme give pairs to look for. So an article that
matches the phrase holds every pair asked for: a hash collision adds candidates, never loses a
match.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 01:10:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def pair_token(a: str, b: str) -> str:
    """SQL: the token of the lexemes ``a`` then ``b`` (SQL text expressions): ``^`` and the low 12
    bits of ``hashtext`` in hex (the hash of hash indexes and hash partitions, which stays the same
    across upgrades; about 40 % cheaper than ``md5``, which a FIPS build also refuses). Written
    into each function, which then calls no function of this schema (a REINDEX or VACUUM may run
    them with only ``pg_catalog`` on the search path)."""
    return f"'^' || to_hex(hashtext({a} || ' ' || {b}) & 4095)"


PG_FUNCTIONS = [
    # The vector and one token per pair of adjacent positions (every lexeme of one with every lexeme of the next).
    f"""CREATE FUNCTION newsloom_with_pairs(v tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        WITH at AS (SELECT u.lexeme, p.pos FROM unnest(v) AS u, unnest(u.positions) AS p(pos))
        SELECT v || array_to_tsvector(coalesce(array_agg(DISTINCT {pair_token("a.lexeme", "b.lexeme")}), '{{}}'))
        FROM at AS a JOIN at AS b ON b.pos = a.pos + 1
    $$""",
    # AND of the pair tokens of each phrase in configuration cfg, from its positions of one lexeme;
    # NULL when there are none.
    f"""CREATE FUNCTION newsloom_phrase_pairs(cfg regconfig, phrases text[]) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        WITH at AS (
            SELECT ph.n, p.pos, min(u.lexeme) AS lexeme
            FROM unnest(phrases) WITH ORDINALITY AS ph(phrase, n), unnest(to_tsvector(cfg, ph.phrase)) AS u,
                 unnest(u.positions) AS p(pos)
            GROUP BY ph.n, p.pos HAVING count(*) = 1)
        SELECT string_agg(DISTINCT quote_literal({pair_token("a.lexeme", "b.lexeme")}), ' & ')::tsquery
        FROM at AS a JOIN at AS b ON b.n = a.n AND b.pos = a.pos + 1
    $$""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_FUNCTIONS:
            op.execute(statement)
        op.execute("DROP INDEX ix_articles_search")
        op.execute("CREATE INDEX ix_articles_search ON articles USING gin (newsloom_with_pairs(search_vector))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_articles_search")
        op.execute("CREATE INDEX ix_articles_search ON articles USING gin (search_vector)")
        for name in ("newsloom_phrase_pairs(regconfig, text[])", "newsloom_with_pairs(tsvector)"):
            op.execute(f"DROP FUNCTION {name}")
