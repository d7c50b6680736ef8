"""A hanging or crashing call in a worker process is cut off, reported, and the pool recovers."""

from __future__ import annotations

import pytest

from service.ingest.workers import WorkerError, WorkerPool
from tests import worker_functions as wf


@pytest.fixture
def small_pool():
    pool = WorkerPool(workers=1, timeout=3)
    yield pool
    pool.close()


async def test_a_hanging_call_times_out_and_the_pool_serves_the_next(small_pool):
    with pytest.raises(WorkerError, match="time limit"):
        await small_pool.run(wf.hang_forever)
    assert await small_pool.run(wf.add, 2, 3) == 5


@pytest.mark.parametrize("function", [wf.crash, wf.exit_abruptly])
async def test_a_crashing_worker_is_reported_and_replaced(small_pool, function):
    with pytest.raises(WorkerError, match="worker process died"):
        await small_pool.run(function)
    assert await small_pool.run(wf.add, 1, 1) == 2


async def test_exceptions_from_the_function_propagate_unchanged(small_pool):
    with pytest.raises(TypeError):
        await small_pool.run(wf.add, 1, "x")
