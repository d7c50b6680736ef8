"""access flag, enclosures, backlog flag, poll-interval override, stage failures

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch): recreating articles on SQLite would drop its FTS triggers (0006).
    op.add_column('articles', sa.Column('access', sa.String(length=16), nullable=True))
    op.add_column('articles', sa.Column('access_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column('articles', sa.Column('enclosures', sa.JSON(), nullable=False, server_default='[]'))
    op.add_column('articles', sa.Column('backlog', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('feeds', sa.Column('poll_interval_override', sa.Integer(), nullable=True))
    op.create_table('stage_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('given_up_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stage', 'item_id', name='uq_stage_failures_item')
    )


def downgrade() -> None:
    op.drop_table('stage_failures')
    op.drop_column('feeds', 'poll_interval_override')
    for name in ('backlog', 'enclosures', 'access_reason', 'access'):  # SQLite >= 3.35 drops columns in place
        op.drop_column('articles', name)
