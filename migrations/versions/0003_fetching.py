"""fetching: feed body hash and OPML category, original publication date text, article dedup key

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(), nullable=True))
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_raw", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("url_key", sa.String(length=2048), nullable=True))
    # Backfill the dedup key from the stored links; the first article of a key keeps it.
    from service.net.urls import dedup_key

    connection = op.get_bind()
    taken: set[str] = set()
    rows = connection.execute(sa.text("SELECT id, url, canonical_url FROM articles ORDER BY id")).all()
    for article_id, url, canonical in rows:
        link = url or canonical
        key = dedup_key(link) if link else None
        if key and key not in taken:
            taken.add(key)
            connection.execute(sa.text("UPDATE articles SET url_key = :k WHERE id = :i"), {"k": key, "i": article_id})
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_articles_url_key", ["url_key"])


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_constraint("uq_articles_url_key", type_="unique")
        batch_op.drop_column("url_key")
        batch_op.drop_column("published_raw")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("category")
        batch_op.drop_column("content_hash")
