"""The online algorithm over JSON Lines files, for ``newsloom stories cluster|eval|compare`` and
``bench/stories.py``: the same features and decisions as the service, without a database.

Article lines: ``{"id", "lang", "outlet", "published" (ISO 8601 or null), "title", "text" (or
null), "url"}``; pair lines: ``{"pair_id", "a": article, "b": article, …}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path


from service.stories.clustering import DocumentFrequencies, OnlineClusterer, Params, pair_score, threshold_for
from service.stories.features import ArticleFeatures, article_features, encode_articles

BATCH = 64


def read_jsonl(path: str | Path) -> list[dict]:
    """Every JSON object of a JSON Lines file (blank lines skipped). Raises ValueError naming the
    line for invalid JSON."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
    return rows


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 → aware UTC datetime (naive values are taken as UTC); None stays None."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stream_order(rows: list[dict]) -> list[int]:
    """Indexes of ``rows`` in processing order: by ``published``, input order where null (an
    undated article keeps its place after the dated ones before it)."""
    keyed = []
    last = float("-inf")
    for index, row in enumerate(rows):
        moment = parse_time(row.get("published"))
        when = moment.timestamp() if moment else last
        last = max(last, when)
        keyed.append((when, index))
    return [index for _when, index in sorted(keyed)]


def features_stream(rows: list[dict], order: list[int], with_fingerprint: bool = False) -> Iterator[tuple[int, ArticleFeatures]]:
    """(index, features) of ``rows`` in ``order``; vectors are encoded ``BATCH`` at a time (batching
    is only arithmetic: no decision looks ahead)."""
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        leads, texts = encode_articles([(rows[i].get("title"), rows[i].get("text")) for i in chunk])
        for i, vector, text_vector in zip(chunk, leads, texts, strict=True):
            row = rows[i]
            yield i, article_features(
                row.get("title"), row.get("text"), row.get("lang"), parse_time(row.get("published")),
                vector=vector, text_vector=text_vector, with_fingerprint=with_fingerprint,
            )


def cluster_rows(rows: list[dict], params: Params = Params(), progress: Callable[[int], None] | None = None) -> list[int]:
    """The story (an int) of each row, as the online algorithm decides in stream order."""
    clusterer = OnlineClusterer(params)
    labels = [0] * len(rows)
    for i, features in features_stream(rows, stream_order(rows)):
        labels[i], _score = clusterer.add(features)
        if progress:
            progress(1)
    return [clusterer.resolve(label) for label in labels]


def pair_features(pairs: list[dict]) -> dict[str, ArticleFeatures]:
    """Features of every distinct article in ``pairs`` (by article id)."""
    articles: dict[str, dict] = {}
    for pair in pairs:
        for side in ("a", "b"):
            articles[str(pair[side]["id"])] = pair[side]
    rows = list(articles.values())
    order = list(range(len(rows)))
    return {str(rows[i]["id"]): f for i, f in features_stream(rows, order)}


def compare_pairs(pairs: list[dict], params: Params = Params(), features: dict[str, ArticleFeatures] | None = None) -> list[dict]:
    """``{"pair_id", "score" (0..1), "same_story"}`` per pair, where ``same_story`` is whether the
    clusterer would put ``b`` into a story holding only ``a`` (or the other way round)."""
    feats = features if features is not None else pair_features(pairs)
    background = DocumentFrequencies(feats.values())  # the file's articles stand in for the window
    out = []
    for pair in pairs:
        a, b = feats[str(pair["a"]["id"])], feats[str(pair["b"]["id"])]
        score = pair_score(a, b, params, background)
        out.append({"pair_id": pair["pair_id"], "score": round(score, 4), "same_story": score >= min(threshold_for(a, params), threshold_for(b, params))})
    return out


__all__ = ["read_jsonl", "parse_time", "stream_order", "cluster_rows", "compare_pairs", "pair_features"]
