"""webhook subscriptions and deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:24:37.100152
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('previous_secret', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('previous_secret_expires_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('disabled_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('failing_since', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_response_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lease_until', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id'),
    sa.UniqueConstraint('subscription_id', 'event_key', name='uq_deliveries_subscription_event')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_queue', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_subscription_id'), ['subscription_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_subscription_id'))
        batch_op.drop_index('ix_deliveries_queue')

    op.drop_table('deliveries')
    op.drop_table('subscriptions')

