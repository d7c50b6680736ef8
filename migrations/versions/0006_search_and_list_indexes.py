"""full-text search over articles; indexes for filtered article lists

PostgreSQL: the SQL function newsloom_regconfig(language) (ISO 639-1 code -> text search
configuration, IMMUTABLE), a stored generated column articles.search_vector (title weight A, text
weight B, stemmed in the article's language) and its GIN index. The database keeps the column
current on every insert and update (PostgreSQL manual §5.3 "Generated Columns", §12.2.2).

SQLite: the external-content FTS5 table articles_fts(title, text) with rowid = articles.id, the
porter + unicode61 tokenizer (diacritics removed), and three triggers that keep it current (SQLite
FTS5 documentation §4.4.3 "External Content Tables"). Existing rows are indexed here.

Both: indexes for the language-filtered list (language, sort_at, id) and the feed-filtered list
(entries.feed_id, article_id).

Note for later migrations on SQLite: a batch operation that *recreates* the articles table drops
its triggers; re-create them (``sqlite_triggers`` below) after such an operation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 02:10:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copy of service.search.PG_CONFIGS at this revision.
PG_CONFIGS = {
    "ar": "arabic", "da": "danish", "de": "german", "el": "greek", "en": "english", "es": "spanish",
    "fi": "finnish", "fr": "french", "ga": "irish", "hu": "hungarian", "id": "indonesian", "it": "italian",
    "lt": "lithuanian", "nb": "norwegian", "ne": "nepali", "nl": "dutch", "nn": "norwegian", "no": "norwegian",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}

_WHEN = "\n        ".join(f"WHEN '{code}' THEN '{config}'::regconfig" for code, config in sorted(PG_CONFIGS.items()))
PG_FUNCTION = f"""
CREATE FUNCTION newsloom_regconfig(lang text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE split_part(lower(lang), '-', 1)
        {_WHEN}
        ELSE 'simple'::regconfig
    END
$$"""

PG_COLUMN = """
ALTER TABLE articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector(newsloom_regconfig(language), coalesce(title, '')), 'A') ||
    setweight(to_tsvector(newsloom_regconfig(language), coalesce(text, '')), 'B')
) STORED"""


def sqlite_triggers() -> list[str]:
    """The statements that keep articles_fts current (FTS5 §4.4.3); only title and text changes
    touch the index (lease and status updates do not)."""
    return [
        """CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
            INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
        END""",
        """CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
        END""",
        """CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
            INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
        END""",
    ]


def upgrade() -> None:
    op.create_index("ix_articles_language_sort", "articles", ["language", "sort_at", "id"])
    op.create_index("ix_entries_feed_article", "entries", ["feed_id", "article_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_COLUMN)
        op.execute("CREATE INDEX ix_articles_search ON articles USING gin (search_vector)")
    else:
        op.execute("""CREATE VIRTUAL TABLE articles_fts USING fts5(
            title, text, content='articles', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')""")
        for statement in sqlite_triggers():
            op.execute(statement)
        op.execute("INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_articles_search")
        op.execute("ALTER TABLE articles DROP COLUMN search_vector")
        op.execute("DROP FUNCTION newsloom_regconfig(text)")
    else:
        for name in ("articles_fts_insert", "articles_fts_delete", "articles_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE articles_fts")
    op.drop_index("ix_entries_feed_article", "entries")
    op.drop_index("ix_articles_language_sort", "articles")
