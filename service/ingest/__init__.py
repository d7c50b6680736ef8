"""Ingestion, in pipeline order: ``urls`` (canonical URLs), ``fetcher`` (HTTP), ``parser`` with
``jsonfeed`` and ``entries`` (feed documents to entries), ``text`` (text hygiene), ``extractor``
(article pages to text and metadata), ``workers`` (process pool for CPU-bound steps), ``store``
(leases and rows) and ``poller`` (the loops that drive them)."""
