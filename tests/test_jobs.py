"""The leased-step runner (``service.jobs``) on a real database: its edge cases that the four steps
do not reach in their own tests."""

from __future__ import annotations

from service.jobs import Runner, Step
from service.models import Feed
from tests.ingest_helpers import claim_due_feeds, make_due, subscribe


class _Booking(Step[Feed, str]):
    """Claims due feeds; ``handle`` fails for every feed whose URL contains ``poison``, and booking
    that failure fails too (the database is gone, say) for those containing ``unbookable``."""

    name = "test"
    model = Feed
    owner = "test-runner"

    def __init__(self, sessions) -> None:
        self.sessions = sessions

    async def claim(self, limit, room):
        async with self.sessions() as session:
            return await claim_due_feeds(session, self.owner, 60, limit)

    async def handle(self, row: Feed) -> str:
        if "poison" in row.url:
            raise RuntimeError("poison")
        return f"ok {row.url}"  # the lease stays held, so the drain does not claim the feed again

    async def failed(self, row: Feed, reason: str) -> str:
        if "unbookable" in row.url:
            raise ConnectionError("database gone")
        return f"failed {row.url}: {reason}"


async def test_a_failure_that_cannot_be_booked_yields_no_result(sessions) -> None:
    """A row whose ``handle`` fails and whose ``failed`` fails too gives ``drain`` no result (not a
    None among the results), and the other rows' results all arrive."""
    urls = ["https://a.example/feed", "https://b.example/poison", "https://c.example/poison-unbookable"]
    ids = [await subscribe(sessions, url) for url in urls]
    await make_due(sessions, *ids)
    seen = []
    results = await Runner(_Booking(sessions), sessions, 60).drain(on_item=lambda row, result: seen.append(row.url))
    assert sorted(results) == ["failed https://b.example/poison: internal error: RuntimeError: poison",
                               "ok https://a.example/feed"]
    assert sorted(seen) == urls[:2]


class _Quiet(_Booking):
    """A step whose rows have no result to report (``handle`` returns None, as delivering does)."""

    async def handle(self, row: Feed) -> None:  # type: ignore[override]
        return None


async def test_rows_whose_result_is_none_are_counted(sessions) -> None:
    """``drain`` returns one result per finished row even when the step's result is None (the
    delivery step's is): callers count rows by it."""
    ids = [await subscribe(sessions, f"https://{host}.example/feed") for host in ("a", "b", "c")]
    await make_due(sessions, *ids)
    assert await Runner(_Quiet(sessions), sessions, 60).drain() == [None, None, None]
