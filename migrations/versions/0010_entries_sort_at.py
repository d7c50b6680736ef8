"""entries.sort_at: the feed-filtered article list in index order

``GET /v1/articles?feed_id=`` read every article of the feed (500 of 100,000 in ``bench/api.py``)
through ``ix_entries_feed_article`` and sorted them by the article's ``sort_at`` for each page: no
index held a feed's articles in that order, because the feed is on ``entries`` and the order on
``articles``. Each entry now carries its article's ``sort_at`` and the index ``ix_entries_feed_sort``
(feed_id, sort_at, article_id) gives a page of a feed newest first as a range of the index, like
``ix_articles_sort`` does for the unfiltered list.

The database keeps the copy equal to ``articles.sort_at`` (no code path can forget it): an entry
inserted without one, or pointed at another article, takes its article's (on PostgreSQL read
``FOR SHARE``, so a concurrent change of that article's ``sort_at`` is waited for); a change of an article's ``sort_at`` is copied to its
entries. Existing entries are filled here. PostgreSQL: PL/pgSQL trigger functions
(``newsloom_entry_sort_at``, ``newsloom_article_sort_at``). SQLite: triggers (an AFTER INSERT one
fills the new row; SQLite triggers cannot assign NEW). As for 0006's triggers: a batch operation
that *recreates* ``entries`` or ``articles`` on SQLite drops them; re-create them after it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:10:00
"""

import sqlalchemy as sa
from alembic import op

import service.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PG_FUNCTIONS = [
    """CREATE FUNCTION newsloom_entry_sort_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' OR NEW.sort_at IS NULL THEN
            -- FOR SHARE: waits for a transaction changing the article's sort_at to commit (a plain
            -- read would copy the old value, and that transaction's trigger cannot see this entry)
            SELECT sort_at INTO NEW.sort_at FROM articles WHERE id = NEW.article_id FOR SHARE;
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE FUNCTION newsloom_article_sort_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE entries SET sort_at = NEW.sort_at WHERE article_id = NEW.id;
        RETURN NULL;
    END $$""",
]
PG_TRIGGERS = [
    """CREATE TRIGGER entries_sort_at_insert BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION newsloom_entry_sort_at()""",
    """CREATE TRIGGER entries_sort_at_repoint BEFORE UPDATE OF article_id ON entries
    FOR EACH ROW WHEN (OLD.article_id IS DISTINCT FROM NEW.article_id) EXECUTE FUNCTION newsloom_entry_sort_at()""",
    """CREATE TRIGGER articles_sort_at_update AFTER UPDATE OF sort_at ON articles
    FOR EACH ROW WHEN (OLD.sort_at IS DISTINCT FROM NEW.sort_at) EXECUTE FUNCTION newsloom_article_sort_at()""",
]
SQLITE_TRIGGERS = [
    """CREATE TRIGGER entries_sort_at_insert AFTER INSERT ON entries WHEN new.sort_at IS NULL BEGIN
        UPDATE entries SET sort_at = (SELECT sort_at FROM articles WHERE id = new.article_id) WHERE id = new.id;
    END""",
    """CREATE TRIGGER entries_sort_at_repoint AFTER UPDATE OF article_id ON entries WHEN new.article_id IS NOT old.article_id BEGIN
        UPDATE entries SET sort_at = (SELECT sort_at FROM articles WHERE id = new.article_id) WHERE id = new.id;
    END""",
    """CREATE TRIGGER articles_sort_at_update AFTER UPDATE OF sort_at ON articles WHEN new.sort_at IS NOT old.sort_at BEGIN
        UPDATE entries SET sort_at = new.sort_at WHERE article_id = new.id;
    END""",
]


def upgrade() -> None:
    # Plain ADD COLUMN (no batch): recreating the tables on SQLite would drop their triggers (0006).
    op.add_column("entries", sa.Column("sort_at", service.models.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE entries SET sort_at = (SELECT sort_at FROM articles WHERE articles.id = entries.article_id)")
    op.create_index("ix_entries_feed_sort", "entries", ["feed_id", "sort_at", "article_id"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in (PG_FUNCTIONS + PG_TRIGGERS) if postgres else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER articles_sort_at_update" + (" ON articles" if postgres else ""))
    op.execute("DROP TRIGGER entries_sort_at_repoint" + (" ON entries" if postgres else ""))
    op.execute("DROP TRIGGER entries_sort_at_insert" + (" ON entries" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION newsloom_article_sort_at()")
        op.execute("DROP FUNCTION newsloom_entry_sort_at()")
    op.drop_index("ix_entries_feed_sort", "entries")
    op.drop_column("entries", "sort_at")
