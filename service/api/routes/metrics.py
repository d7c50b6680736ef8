"""``GET /metrics``: Prometheus text exposition of ``service.metrics`` (needs a ``read`` key when auth is on)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service import metrics
from service.api.deps import SessionDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def get_metrics(request: Request, session: SessionDep) -> Response:
    """Every metric in the Prometheus text format (0.0.4); queue gauges are at most 5 s old."""
    await request.app.state.queue_gauges.refresh(session)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
