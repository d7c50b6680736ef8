"""``models.UTCDateTime`` on SQLite: written as SQLAlchemy's ``DATETIME`` writes (UTC, no zone),
read back timezone-aware; a naive moment is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from service.models import UTCDateTime

MOMENTS = [datetime(2025, 1, 1, 10, 11, 12, 123456, tzinfo=UTC), datetime(999, 1, 1, tzinfo=UTC),
           datetime(2025, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 6, 1, 23, 59, 59, 1, tzinfo=UTC)]


def test_stored_text_is_sqlalchemys_and_reads_back_the_same_moment():
    sqlalchemys = sqlite.DATETIME().bind_processor(sqlite.dialect())
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UTCDateTime()))
    engine = sa.create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "at": moment} for i, moment in enumerate(MOMENTS)])
        stored = conn.execute(sa.text("SELECT at FROM t ORDER BY id")).scalars().all()
        read = conn.execute(sa.select(table.c.at).order_by(table.c.id)).scalars().all()
    assert stored == [sqlalchemys(moment.astimezone(UTC).replace(tzinfo=None)) for moment in MOMENTS]
    assert read == MOMENTS and all(moment.tzinfo is UTC for moment in read)
    with engine.begin() as conn, pytest.raises(sa.exc.StatementError, match="naive datetime"):
        conn.execute(table.insert(), {"id": 99, "at": datetime(2025, 1, 1)})
