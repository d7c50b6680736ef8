"""The storage layer: every query Newsloom issues lives here, one module a resource (migrations
aside, in ``migrations/``). Pipeline steps, API routes, the CLI and the metrics call these functions
and never build SQL themselves.

* ``feeds`` — when a feed is due, claims, and the outcome of each poll (document, 304, failure, move).
* ``articles`` — entries stored once per feed document (a constant number of statements), outlets,
  pages due for extraction and the outcome of each extraction; the API's article lists (filters,
  search, keyset pages: one cached statement per shape), one article, citations, outlet domains.
* ``deliveries`` — the webhook outbox: deliveries written with their change, claimed by the delivery
  worker, booked after each attempt (many successes in one UPDATE), listed and retried by the API.
* ``subscriptions`` — webhook subscriptions: the API's reads and writes, the active ones of an event
  type, disabling (pending deliveries become ``dead``).
* ``leases`` — claiming rows with a lease (``SELECT … FOR UPDATE SKIP LOCKED``), heartbeats, release.
* ``failures`` — poison items: repeated failures of one item in one stage are given up on.
* ``stories`` — the story step's statements: unlinked articles claimed, the story lock, the stories of
  a time window and a cache of their decoded states, near-duplicate candidates, cited outlets,
  citations, merges.
* ``story_views`` — the API's story list (filters, search, keyset pages) and one story's articles.
* ``search`` — a parsed search's SQL on each database: condition and rank (``service.search`` parses).
* ``keys`` — API keys by digest: add, list, revoke, find, mark used.
* ``queues`` — the depths of the work queues for ``/metrics``.
* ``sql`` — helpers shared by the modules above (keyset pagination, running a Core statement,
  counting under conditions, INSERT … ON CONFLICT, the health checks' queries).

Claims go through ``leases``, so several processes share the work without taking the same row, and
a dead process's rows become due again.

Storing a feed document (``feeds.book_document``, ``articles.store_entries``,
``feeds.record_unchanged``) is synchronous code on a ``sqlalchemy.orm.Session``: the poller runs a
feed's whole transaction at once, on SQLite in one hand-off to a writer thread (``db.Writer``),
elsewhere in an async session's ``run_sync``. Its statements are Core on the tables, most built once
at import (no ORM flush or identity map; a statement reused skips SQLAlchemy's cache-key walk).
"""
