"""The webhook payloads, documented in the OpenAPI schema (OpenAPI 3.1 ``webhooks``): one entry per
event type, each the JSON body Newsloom POSTs to subscribers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from service.shapes import ArticlePublic, StorySummary

SIGNATURE_HEADERS = (
    "Signed per Standard Webhooks: headers `webhook-id` (same on every retry), `webhook-timestamp` "
    "(Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`)."
)


class ArticleCreatedEvent(BaseModel):
    type: Literal["article.created"]
    timestamp: datetime = Field(description="When the event was written (UTC).")
    data: ArticlePublic


class StoryEvent(BaseModel):
    type: Literal["story.created", "story.updated"]
    timestamp: datetime = Field(description="When the event was written (UTC).")
    data: StorySummary


class StoryMergedData(StorySummary):
    merged_story_ids: list[int] = Field(description="Stories merged into this one; their ids no longer exist.")


class StoryMergedEvent(BaseModel):
    type: Literal["story.merged"]
    timestamp: datetime = Field(description="When the event was written (UTC).")
    data: StoryMergedData


class PingData(BaseModel):
    subscription_id: int
    message: str


class PingEvent(BaseModel):
    type: Literal["ping"]
    timestamp: datetime
    data: PingData


def document(app: FastAPI) -> None:
    """Add the event payloads to ``app``'s OpenAPI ``webhooks`` section."""

    @app.webhooks.post("article.created", summary="An article matching the subscription is complete", description=SIGNATURE_HEADERS)
    def article_created(body: ArticleCreatedEvent) -> None:
        """Sent once per article that is news to the subscriber (see the README's webhook policy)."""

    @app.webhooks.post("story.created", summary="An article started a story", description=SIGNATURE_HEADERS)
    def story_created(body: StoryEvent) -> None:
        """Sent when a new article (news to the subscriber) starts a story."""

    @app.webhooks.post("story.updated", summary="A story gained an outlet or a language", description=SIGNATURE_HEADERS)
    def story_updated(body: StoryEvent) -> None:
        """Sent when an article brings its story an outlet or a language it did not have."""

    @app.webhooks.post("story.merged", summary="Late evidence showed two stories to be one", description=SIGNATURE_HEADERS)
    def story_merged(body: StoryMergedEvent) -> None:
        """Sent when an article links stories told apart until then; the older keeps its id."""

    @app.webhooks.post("ping", summary="A test event from POST /v1/subscriptions/{id}/test", description=SIGNATURE_HEADERS)
    def ping(body: PingEvent) -> None:
        """Sent on request, to check an endpoint and its signature verification."""
