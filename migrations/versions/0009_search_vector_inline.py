"""PostgreSQL: keep articles.search_vector in the table row (STORAGE MAIN)

A search reads the vector of every row the GIN index finds, to match phrases (positions are not in
a GIN index) and the query of the row's own configuration (``service.storage.search.postgres_match``). With
the default storage (EXTENDED) a row with a 120-word text outgrows TOAST's 2 kB threshold and the
vector, its largest value, moved to the TOAST table: one TOAST index look-up and heap read per
candidate (a two-word phrase over 6,000 candidates: 145 ms against 41 ms with the vectors in the
rows, ``bench/api.py``'s corpus). MAIN keeps the vector in the row (compressed) and moves the text
out first; it goes out of line only when nothing else makes the row fit a page (PostgreSQL manual
§73.2 "TOAST"). Only rows written from now on are stored so; ``VACUUM FULL articles`` rewrites the
existing ones (docs/operations.md). SQLite: nothing to do.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:20:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles ALTER COLUMN search_vector SET STORAGE MAIN")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles ALTER COLUMN search_vector SET STORAGE EXTENDED")
