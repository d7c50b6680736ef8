"""Every document of ``../shared/corpus/feeds`` ingests through the real poller over HTTP without an
unhandled error; documents feedparser can recover keep their entries, the expected entry counts
stated by the source projects hold, and no stored text is mojibake."""

from __future__ import annotations

import json
import re

from service.models import Article, Entry
from tests.ingest_helpers import count, feed_row, subscribe


async def test_every_corpus_feed_ingests(corpus, server, poller, sessions):
    index = json.loads((corpus / "feeds" / "index.json").read_text())["feeds"]
    ids = {}
    for record in index:
        path = "/corpus/feeds/" + record["file"]
        ids[record["file"]] = await subscribe(sessions, server.url(path))
    await poller.poll_due_feeds()
    problems = []
    for record in index:
        feed = await feed_row(sessions, ids[record["file"]])
        error = feed.last_error or ""
        if error.startswith("internal error"):
            problems.append(f"{record['file']}: {error}")
        if record["format"] == "html-not-a-feed":
            if "not a readable feed" not in error:
                problems.append(f"{record['file']}: an HTML page was accepted as a feed")
            continue
        async with sessions() as session:
            from sqlmodel import func, select
            entries = (await session.exec(select(func.count()).select_from(Entry).where(Entry.feed_id == feed.id))).one()
        expected = record.get("expected_entries")
        observed = (record.get("observed") or {}).get("entries") or 0
        if expected is not None and entries < expected:
            problems.append(f"{record['file']}: {entries} entries, expected {expected}")
        elif observed and entries == 0:
            problems.append(f"{record['file']}: no entries ({error})")
    assert not problems, "\n".join(problems)
    async with sessions() as session:
        from sqlmodel import select
        titles = (await session.exec(select(Article.title))).all()
    assert not [t for t in titles if t and re.search("Ã[\u0080-\u00bf]", t)]
    assert await count(sessions, Article) > 300
