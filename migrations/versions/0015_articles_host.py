"""articles.host and two claim indexes: one host's page backlog no longer holds up every other host

A page claim read the first ``SPREAD_FACTOR × limit`` due pages (1,000 for 20 free slots) and took
turns between their hosts; when all of them were of one host with no free slot (500 pages of one
site, fetched one a second), a new page of another host behind them waited until that backlog
fell below the read: minutes. ``articles.host`` stores each article's politeness key
(``net.hosts.host_key`` of ``url``, written with the article) and ``ix_articles_host_queue``
(``extraction_status, host, next_fetch_at, id``) lets the claim read the first due page of each
host with one index seek per host (``leases.firsts_query``). Webhook deliveries take turns between
subscriptions the same way: ``ix_deliveries_subscription_queue`` (``status, subscription_id,
next_attempt_at, id``).

Existing articles with a URL get their host here, in batches of 5,000 (keyset on id), in the
migration's transaction. Running it again (a database stamped behind it) adds only what is missing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 05:00:00
"""

import sqlalchemy as sa
from alembic import op

from service.net.hosts import host_key

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "host" not in {column["name"] for column in inspector.get_columns("articles")}:
        op.add_column("articles", sa.Column("host", sa.String(255), nullable=True))
    articles = sa.table("articles", sa.column("id", sa.Integer), sa.column("url", sa.String), sa.column("host", sa.String))
    read = (sa.select(articles.c.id, articles.c.url)
            .where(articles.c.id > sa.bindparam("after"), articles.c.url.is_not(None), articles.c.host.is_(None))
            .order_by(articles.c.id).limit(BATCH))
    write = sa.update(articles).where(articles.c.id == sa.bindparam("article_id")).values(host=sa.bindparam("article_host"))
    after = 0
    while rows := bind.execute(read, {"after": after}).all():
        bind.execute(write, [{"article_id": article_id, "article_host": host_key(url)} for article_id, url in rows])
        after = rows[-1][0]
    for name, table, columns in (("ix_articles_host_queue", "articles", ["extraction_status", "host", "next_fetch_at", "id"]),
                                 ("ix_deliveries_subscription_queue", "deliveries",
                                  ["status", "subscription_id", "next_attempt_at", "id"])):
        if name not in {index["name"] for index in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    op.drop_index("ix_deliveries_subscription_queue", table_name="deliveries")
    op.drop_index("ix_articles_host_queue", table_name="articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("host")
