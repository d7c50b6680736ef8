"""Liveness: ``GET /healthz`` answers 200 while the process serves and its database answers."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from service.api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(session: SessionDep) -> dict[str, str]:
    """``{"status": "ok"}`` once the database answers a trivial query."""
    await session.exec(text("SELECT 1"))
    return {"status": "ok"}
