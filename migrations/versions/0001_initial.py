"""outlets, feeds, entries, articles

Revision ID: 0001
Revises:
Create Date: 2026-11-30 01:08:42.343998
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('outlets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain')
    )
    op.create_table('feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('site_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('outlet_id', sa.Integer(), nullable=True),
    sa.Column('etag', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('last_modified', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('poll_interval', sa.Integer(), nullable=False),
    sa.Column('next_poll_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_polled_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lease_until', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('url')
    )
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feeds_next_poll_at'), ['next_poll_at'], unique=False)

    op.create_table('articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('canonical_url', sa.String(length=2048), nullable=True),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('feed_id', sa.Integer(), nullable=True),
    sa.Column('outlet_id', sa.Integer(), nullable=True),
    sa.Column('guid', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('feed_content', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('text_source', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('authors', sa.JSON(), nullable=False),
    sa.Column('published_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('fetched_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sort_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('word_count', sa.Integer(), nullable=True),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('extraction_status', sa.String(length=16), nullable=False),
    sa.Column('extraction_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fetch_attempts', sa.Integer(), nullable=False),
    sa.Column('next_fetch_at', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lease_until', service.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('canonical_url')
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_articles_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_articles_feed_id'), ['feed_id'], unique=False)
        batch_op.create_index('ix_articles_page_queue', ['extraction_status', 'next_fetch_at'], unique=False)
        batch_op.create_index('ix_articles_sort', ['sort_at', 'id'], unique=False)

    op.create_table('entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('entry_key', sa.String(length=2048), nullable=False),
    sa.Column('guid', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('link', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', service.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('feed_id', 'entry_key', name='uq_entries_feed_key')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entries_article_id'), ['article_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entries_article_id'))

    op.drop_table('entries')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_sort')
        batch_op.drop_index('ix_articles_page_queue')
        batch_op.drop_index(batch_op.f('ix_articles_feed_id'))
        batch_op.drop_index(batch_op.f('ix_articles_content_hash'))

    op.drop_table('articles')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feeds_next_poll_at'))

    op.drop_table('feeds')
    op.drop_table('outlets')

