"""PostgreSQL: no planner statistics for the search index's expression

``ANALYZE articles`` (autovacuum's every ~10 % of changed rows, and ``bench/api.py``'s after a bulk
load) gathered statistics on the expression of the GIN index ``ix_articles_search``,
``newsloom_with_pairs(search_vector)`` (migration 0011): it evaluated the function for each of
its up to 30,000 sampled rows, 15–17 s of CPU at 102,000 articles against about 1 s for all of the
table's columns (docs/benchmarks.md, pg11).

No plan reads those statistics. The only condition on the expression is the search's
``newsloom_with_pairs(search_vector) @@ (SELECT …)::tsquery`` (``service.storage.search``), whose
query is an InitPlan, not a constant, so PostgreSQL's ``@@`` selectivity (``tsmatchsel``) takes its
default without looking at the column's statistics. The index column's statistics target is now 0,
which makes ``ANALYZE`` skip the expression (PostgreSQL manual, ``ALTER INDEX … ALTER COLUMN … SET
STATISTICS``; those already gathered stay until the index is rebuilt, unread). The statistics of ``search_vector`` itself,
which the recheck's ``search_vector @@ to_tsquery(...)`` is estimated from, stay.

SQLite: nothing to do (no such statistics).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:00:00
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX ix_articles_search ALTER COLUMN 1 SET STATISTICS 0")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX ix_articles_search ALTER COLUMN 1 SET STATISTICS -1")
