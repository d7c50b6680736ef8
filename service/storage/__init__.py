"""The storage layer: every query Newsloom issues lives here, one module a resource (migrations
aside, in ``migrations/``). Pipeline steps, API routes, the CLI and the metrics call these functions
and never build SQL themselves.

* ``feeds`` — when a feed is due, claims, and the outcome of each poll (document, 304, failure, move).
* ``articles`` — entries stored once per feed document (a constant number of statements), outlets,
  pages due for extraction and the outcome of each extraction.
* ``leases`` — claiming rows with a lease (``SELECT … FOR UPDATE SKIP LOCKED``), heartbeats, release.
* ``failures`` — poison items: repeated failures of one item in one stage are given up on.
* ``sql`` — helpers shared by the modules above (counting under conditions, INSERT … ON CONFLICT).

Claims go through ``leases``, so several processes share the work without taking the same row, and
a dead process's rows become due again.

Storing a feed document (``feeds.book_document``, ``articles.store_entries``,
``feeds.record_unchanged``) is synchronous code on a ``sqlalchemy.orm.Session``: the poller runs a
feed's whole transaction at once, on SQLite in one hand-off to a writer thread (``db.Writer``),
elsewhere in an async session's ``run_sync``. Its statements are Core on the tables, most built once
at import (no ORM flush or identity map; a statement reused skips SQLAlchemy's cache-key walk).
"""
