"""Liveness and readiness: ``GET /healthz`` answers 200 while the process serves and its database
answers; ``GET /readyz`` answers 200 only when this replica should get traffic."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import SessionDep
from service.api.problems import Problem
from service.storage import sql

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(session: SessionDep) -> dict[str, str]:
    """``{"status": "ok"}`` once the database answers a trivial query."""
    await sql.ping(session)
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; `detail` and `checks` say why."}})
async def readyz(request: Request, session: SessionDep) -> dict[str, str]:
    """``{"status": "ready"}`` when the database answers, its schema is at the migration head this
    code expects, the background workers that are enabled are running, and the process is not
    shutting down; else a 503 problem whose ``checks`` member lists what failed."""
    state = request.app.state
    failed: list[str] = []
    if getattr(state, "stopping", False):
        failed.append("shutting down")
    try:
        current = await sql.schema_heads(session)
        if current != set(state.migration_heads):
            failed.append(f"database schema at {sorted(current)}, this code expects {sorted(state.migration_heads)}")
    except Exception as exc:  # any database failure means not ready; say which
        failed.append(f"database: {type(exc).__name__}: {exc}"[:300])
    for task in getattr(state, "tasks", []):
        if task.done():
            failed.append(f"{task.get_name()} stopped")
    if failed:
        raise Problem(503, "; ".join(failed), checks=failed)
    return {"status": "ready"}
