"""api keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )


def downgrade() -> None:
    op.drop_table('api_keys')
