"""URL canonicalisation: tracking parameters, case, ports, fragments and AMP markers go; query
parameters that name the article stay (merging two articles would lose one)."""

from __future__ import annotations

import pytest

from service.ingest.urls import canonicalize


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("HTTPS://WWW.Example.org:443/a/b/?utm_medium=x&id=3#comments", "https://www.example.org/a/b/?id=3"),
        ("https://example.com/news?story=5&utm_source=rss&fbclid=abc", "https://example.com/news?story=5"),
        ("https://example.com/view?articleid=77&gclid=1", "https://example.com/view?articleid=77"),
        ("https://www.heise.de/news/x.html?seite=2", "https://www.heise.de/news/x.html?seite=2"),
        ("https://example.org/world/amp/?amp=1", "https://example.org/world/"),
    ],
)
def test_canonical_forms(given, canonical):
    assert canonicalize(given) == canonical


def test_articles_named_by_a_query_parameter_stay_distinct():
    assert canonicalize("https://example.com/news?story=5") != canonicalize("https://example.com/news?story=6")
