"""bench/feature_cache.py: what its version covers, and that a stored entry is read back instead of
computed (a real cache directory under tmp_path; no encoder runs)."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np

from bench import feature_cache
from service.stories.features import ArticleFeatures
from tests.conftest import ROOT


def test_version_covers_the_feature_modules_and_their_data_only():
    sources = {str(path.relative_to(ROOT)) for path in feature_cache.feature_sources()}
    assert {"service/stories/features.py", "service/stories/representation.py", "service/stories/names.py",
            "service/stories/centering.json", "service/ingest/pages/extracted.py", "service/ingest/__init__.py"} <= sources
    assert not sources & {"service/stories/clustering.py", "service/stories/combiner.py", "service/stories/combiner.json"}


def test_article_key_reads_title_text_lang_and_published():
    row = {"id": 1, "title": "Flood in Valencia", "text": "Rain fell.", "lang": "en", "published": None, "url": "https://a.example/1"}
    key = feature_cache.article_key(row)
    assert feature_cache.article_key({**row, "id": 2, "url": "https://b.example/2"}) == key
    for name, value in (("title", "Flood in Murcia"), ("text", "Rain fell again."), ("lang", "es"), ("published", "2024-10-29T10:00:00Z")):
        assert feature_cache.article_key({**row, name: value}) != key


def test_a_stored_entry_is_read_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    row = {"id": "a", "title": "Flood in Valencia", "text": None, "lang": "en", "published": None}
    stored = ArticleFeatures(vector=np.ones(4, dtype=np.float32) / 2, lang="en", terms=Counter({"flood": 1}), entities=frozenset({"valencia"}))
    folder = tmp_path / "newsloom-bench" / "features" / feature_cache.code_version()
    folder.mkdir(parents=True)
    (folder / f"{feature_cache.article_key(row)}.pickle").write_bytes(pickle.dumps(stored))
    counted = []
    (got,) = feature_cache.features_of([row], progress=counted.append)
    assert got.terms == stored.terms and got.entities == stored.entities and np.array_equal(got.vector, stored.vector)
    assert counted == [1]
