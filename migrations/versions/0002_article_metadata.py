"""article metadata: language confidence, site name, top image

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Title, authors, published/updated times, language, canonical URL and word count already have
columns (0001); this adds what extraction now also reports. Batch mode keeps SQLite happy.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language_confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("site_name", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("image_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("image_url")
        batch_op.drop_column("site_name")
        batch_op.drop_column("language_confidence")
