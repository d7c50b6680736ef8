"""Schemathesis against our OpenAPI document, over real HTTP on 127.0.0.1: generated requests
(valid and invalid) must never get a 5xx, and every response must match the documented status
codes, content types and schemas. Examples per operation are bounded so a run takes well under a
minute per database.

Not checked: ``positive_data_acceptance`` (a schema-valid request must get a 2xx). Some
schema-valid requests are rightly refused on meaning: a feed URL whose host does not resolve, a
cursor we did not issue, a body that is not OPML; those are 422 or 400 problems, and documented.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.auth import create_key
from service.config import Settings
from service.db import create_engine, session_factory
from service.feeds import add_feed
from service.models import Article, ExtractionStatus, Subscription
from service.webhooks import outbox, signing
from tests.conftest import running_app


@pytest.fixture
def fuzzed_api(settings: Settings):
    """The app with auth on (unlimited rate) and an admin key; short network timeouts, since
    generated feed and webhook URLs point anywhere (the SSRF guard, on here, refuses private
    addresses without connecting). Yields (base URL, key)."""
    fast = settings.model_copy(update={
        "poller_enabled": False, "webhooks_enabled": False, "auth": True, "rate_limit": 0, "allow_private_networks": False,
        "connect_timeout": 1.0, "read_timeout": 1.0, "total_timeout": 2.0,
    })
    key = asyncio.run(_admin_key(settings.database_url))
    with running_app(fast) as base:
        yield base, key


async def _admin_key(url: str) -> str:
    """An admin key, plus one feed, one article and one subscription with a delivery, so generated
    small ids sometimes reach existing rows (ids start at 1)."""
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        _row, key = await create_key(session, "admin", "schemathesis")
        feed, _created = await add_feed(session, "https://news.example.com/feed.xml", 900)
        session.add(Article(url="https://news.example.com/a", canonical_url="https://news.example.com/a",
                            feed_id=feed.id, title="Fuzzed", extraction_status=ExtractionStatus.ok))
        subscription = Subscription(url="https://hooks.example.com/in", secret=signing.generate_secret(),
                                    event_types=["article.created"], filter={})
        session.add(subscription)
        await session.flush()
        await session.run_sync(outbox.enqueue_ping, subscription)
        await session.commit()
    await engine.dispose()
    return key


def test_api_conforms_to_its_openapi_schema(fuzzed_api):
    base, key = fuzzed_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    # A schema-violating query string longer than 4096 bytes (a cursor of 512 four-byte characters,
    # percent-encoded) is refused by the size limit before validation: 414, documented for every
    # operation, is a rejection like 422.
    schema.config.checks.negative_data_rejection.expected_statuses.append("414")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                             derandomize=True, database=None, phases=[Phase.explicit, Phase.generate])
        def check(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
