"""Poison items: an item that fails in one stage the same way several times is given up on.

A stage that retries its items after a lease lapses (the story linker, say) would otherwise
retry an item that fails on every attempt for ever. Each failure is booked here
(``stage_failures``: stage, item id, count, error); when the same error (exception type and
message) comes back ``GIVE_UP_AFTER`` times in a row the item is marked given up, the stage books
it as done without the result it could not compute, and the mark shows in the API (the article's
``failures``) and in ``/metrics`` (``newsloom_items_given_up_total{stage}``). A different error
starts the count again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import metrics
from service.models import StageFailure, utcnow

GIVE_UP_AFTER = 3
"""Failures in a row with the same error after which a stage gives an item up."""


def describe(exc: BaseException) -> str:
    """The error as booked and compared: ``"<exception type>: <message>"``, at most 1,000 characters."""
    return f"{type(exc).__name__}: {exc}"[:1000]


async def record(sessions: Callable[[], AsyncSession], stage: str, item_id: int, error: str) -> bool:
    """Book one failure of item ``item_id`` in ``stage`` with ``error`` (``describe``), in a
    transaction of its own; True when the item is now given up (the same error
    ``GIVE_UP_AFTER`` times in a row), and from then on."""
    async with sessions() as session:
        row = (await session.exec(select(StageFailure).where(
            StageFailure.stage == stage, StageFailure.item_id == item_id
        ).with_for_update())).first()
        if row is None:
            row = StageFailure(stage=stage, item_id=item_id, count=0)
            session.add(row)
        row.count = row.count + 1 if row.error == error else 1
        row.error = error
        row.updated_at = utcnow()
        newly = row.given_up_at is None and row.count >= GIVE_UP_AFTER
        if newly:
            row.given_up_at = row.updated_at
        given_up = row.given_up_at is not None
        await session.commit()
    if newly:
        metrics.ITEMS_GIVEN_UP.labels(stage).inc()
    return given_up


ARTICLE_STAGES = ("link",)
"""The stages whose items are articles."""


def of_items(session: Session, item_ids: list[int], stages: tuple[str, ...] = ARTICLE_STAGES) -> dict[int, list[StageFailure]]:
    """The failures booked in ``stages`` for ``item_ids``, by item id, in booking order.
    Synchronous (``db.Reader``, or ``run_sync``)."""
    if not item_ids:
        return {}
    rows = session.execute(select(StageFailure).where(
        col(StageFailure.item_id).in_(item_ids), col(StageFailure.stage).in_(stages)
    ).order_by(col(StageFailure.id))).scalars().all()
    out: dict[int, list[StageFailure]] = {}
    for row in rows:
        out.setdefault(row.item_id, []).append(row)
    return out
