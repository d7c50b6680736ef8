"""SQLite: ids of feeds, stories and subscriptions are never given again (AUTOINCREMENT)

Without ``AUTOINCREMENT`` a SQLite row id is the largest id in the table + 1 (SQLite manual,
"SQLite Autoincrement"), so deleting the newest row hands its id to the next one: a feed
unsubscribed and another subscribed took its id, and a webhook filter naming the gone feed
(``filter.feeds``, documented to match nothing more) matched the new feed's articles; a story
merged away gave its id to the next story, announced with ``story.created`` under the gone story's
id; a deleted subscription's id addressed the next endpoint. These three tables are where rows are
deleted while their ids live on outside (filters, events, clients' URLs). With ``AUTOINCREMENT``
SQLite keeps each table's largest id ever used in ``sqlite_sequence``.

SQLite cannot add ``AUTOINCREMENT`` to a table: each is rebuilt (Alembic batch mode: new table,
rows copied, old one dropped, new one renamed; its indexes made again). The migrations' engine sets
no ``PRAGMA foreign_keys`` (``migrations/env.py``, unlike the service's connections), so dropping
the old table neither cascades to ``entries`` nor nulls ``articles.feed_id``/``story_id``. An id
given again before this migration stays given.

PostgreSQL: nothing to do (its sequences never give an id twice).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 04:30:00
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = ("feeds", "stories", "subscriptions")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
