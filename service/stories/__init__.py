"""Stories: linking reports of the same event across outlets and languages.

Layers, one module each, in pipeline order (DESIGN.md, "Dedup and story linking"):

1. Same URL: ``service.net.urls.canonicalize`` and ``rel=canonical`` at extraction, owned by
   ingestion (``service/ingest/``). URL variants that still reach us as separate articles (AMP
   pages, a slash more or less) carry the same text, so layers 2-3 mark them ``duplicate_of``
   and they share a story (see the BL-18 test);
2. and 3. ``fingerprints``: exact text hash and MinHash LSH near-duplicates (``duplicate_of``);
4. ``representation`` (multilingual sentence encoder) + ``features`` (terms, entities, ``figures``) +
   ``clustering`` (online assignment of an article to a story within a time window);
5. ``attribution``: "X reported", "laut X" → cited outlet.

``linker`` is the database side: it claims articles whose text is final, computes their features in
the worker pool and assigns them to stories under a lock. ``metrics`` holds B-cubed and pairwise
scores for the benchmark and the ``newsloom stories`` commands.
"""
