"""Article pages: trafilatura turns a page into text (``extractor``, run in worker processes) with
its metadata (``metadata``: title, date, authors, site), paywall and consent walls flagged
(``walls``), repeated site chrome dropped (``boilerplate``), the language identified (``language``);
``extracted`` is the result's shape. Pure functions over bytes: no network, no database."""
