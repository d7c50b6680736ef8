"""feeds.url_key: one subscription per feed whatever credentials its URL carries, held by the database

``https://user:pw@host/feed`` and ``https://host/feed`` are one feed (credentials are how a private
feed is fetched, not which feed it is). Subscribing checked that with a look-up first
(``storage.feeds.by_url``), so two subscriptions made at the same moment could both pass it and
store two feeds. ``url_key`` is the URL without ``user:password@`` and ``ux_feeds_url_key`` makes
it unique: the later INSERT fails and ``storage.feeds.add`` answers with the feed stored first.

Existing feeds are filled here. Feeds that already share a key (stored before this migration by
the race) are all kept: the oldest takes the key, the others keep a null key (nulls are distinct
in a unique index), so no subscription, entry or article is touched; the migration logs them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:15:00
"""

import logging

import sqlalchemy as sa
from alembic import op

from service.net.urls import without_userinfo

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("url_key", sa.String(2048), nullable=True))
    bind = op.get_bind()
    feeds = sa.table("feeds", sa.column("id", sa.Integer), sa.column("url", sa.String), sa.column("url_key", sa.String))
    taken: dict[str, int] = {}
    keys = []
    for feed_id, url in bind.execute(sa.select(feeds.c.id, feeds.c.url).order_by(feeds.c.id)):
        key = without_userinfo(url)
        if key in taken:
            logging.getLogger("alembic").warning("feed %s has the URL of feed %s but for credentials: kept, without url_key",
                                                 feed_id, taken[key])
            continue
        taken[key] = feed_id
        keys.append({"feed_id": feed_id, "key": key})
    if keys:
        bind.execute(sa.update(feeds).where(feeds.c.id == sa.bindparam("feed_id")).values(url_key=sa.bindparam("key")), keys)
    op.create_index("ux_feeds_url_key", "feeds", ["url_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_feeds_url_key", table_name="feeds")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("url_key")
