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
from typing import Any

from service.stories.clustering import DocumentFrequencies, OnlineClusterer, Params, pair_same_story, pair_score
from service.stories.features import ArticleFeatures, article_features, screened_articles

BATCH = 64


def read_jsonl(path: str | Path, check: Callable[[Any, str], None] | None = None, unique: str | None = None) -> list[dict]:
    """Every JSON value of a JSON Lines file (blank lines skipped), each passed to ``check(value,
    "PATH:LINE")`` when given. With ``unique``, that member (an id) may not repeat. Raises
    ValueError naming the line for invalid JSON, a repeated ``unique`` value (naming the line that
    had it first), or whatever ``check`` raises."""
    rows = []
    seen: dict[Any, int] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
                if check is not None:
                    check(row, f"{path}:{number}")
                if unique is not None:
                    key = row.get(unique)
                    if key in seen:
                        raise ValueError(f"{path}:{number}: {unique} {key!r} is already on line {seen[key]}")
                    seen[key] = number
                rows.append(row)
    return rows


_ARTICLE_TEXT = ("title", "text", "lang", "outlet", "url")


def _label(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def check_article(row: Any, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``row`` is an article line: an object with an
    ``id`` (string or integer), a ``title`` or a ``text``, ``title``/``text``/``lang``/``outlet``/``url``
    strings or null (``lang`` a two-letter ISO 639-1 code), ``published`` ISO 8601 or null,
    ``story`` (gold, optional) a string, an integer or null."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: not a JSON object")
    if not _label(row.get("id")):
        raise ValueError(f"{where}: no id (a string or an integer)")
    for name in _ARTICLE_TEXT:
        if row.get(name) is not None and not isinstance(row[name], str):
            raise ValueError(f"{where}: {name} must be a string or null, not {type(row[name]).__name__}")
    if not (row.get("title") or row.get("text")):
        raise ValueError(f"{where}: neither a title nor a text")
    lang = row.get("lang")
    if lang is not None and not (len(lang) == 2 and lang.isascii() and lang.isalpha()):
        raise ValueError(f"{where}: lang must be a two-letter ISO 639-1 code or null, not {lang!r}")
    published = row.get("published")
    try:
        if published is not None and not isinstance(published, str):
            raise ValueError(type(published).__name__)
        parse_time(published)
    except ValueError as exc:
        raise ValueError(f"{where}: published must be ISO 8601 or null, not {published!r}") from exc
    if row.get("story") is not None and not _label(row["story"]):
        raise ValueError(f"{where}: story must be a string, an integer or null")


def check_pair(row: Any, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``row`` is a pair line: an object with a
    ``pair_id`` (string or integer), articles ``a`` and ``b`` (``check_article``; ``story`` unused),
    ``overall`` a number from 1 to 4 (SemEval 2022 task 8's scale: 1 = very similar) or null,
    ``same_story`` a boolean or null."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: not a JSON object")
    if not _label(row.get("pair_id")):
        raise ValueError(f"{where}: no pair_id (a string or an integer)")
    for side in ("a", "b"):
        check_article(row.get(side), f"{where}: {side}")
    overall = row.get("overall")
    if overall is not None and (isinstance(overall, bool) or not isinstance(overall, (int, float)) or not 1 <= overall <= 4):
        raise ValueError(f"{where}: overall must be a number from 1 to 4 or null")
    if row.get("same_story") is not None and not isinstance(row["same_story"], bool):
        raise ValueError(f"{where}: same_story must be true, false or null")


def check_label(row: Any, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``row`` is an object with an ``id`` and a ``story``
    (strings or integers; ``story`` may be null: unlabelled)."""
    if not isinstance(row, dict) or not _label(row.get("id")):
        raise ValueError(f"{where}: not an object with an id (a string or an integer)")
    if row.get("story") is not None and not _label(row["story"]):
        raise ValueError(f"{where}: story must be a string, an integer or null")


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
    is only arithmetic: no decision looks ahead), after ``on_headline`` (a body not about its
    headline is left out, as in ``article_features``; both through ``screened_articles``)."""
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        items, leads, texts = screened_articles([(rows[i].get("title"), rows[i].get("text")) for i in chunk],
                                                langs=[rows[i].get("lang") for i in chunk])
        for i, (title, text), vector, text_vector in zip(chunk, items, leads, texts, strict=True):
            row = rows[i]
            yield i, article_features(
                title, text, row.get("lang"), parse_time(row.get("published")),
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


def pair_articles(pairs: list[dict]) -> dict[str, dict]:
    """The distinct articles of ``pairs``, by article id (as a string)."""
    return {str(pair[side]["id"]): pair[side] for pair in pairs for side in ("a", "b")}


def pair_features(pairs: list[dict], progress: Callable[[int], None] | None = None) -> dict[str, ArticleFeatures]:
    """Features of every distinct article in ``pairs`` (by article id); ``progress(1)`` after each."""
    rows = list(pair_articles(pairs).values())
    feats = {}
    for i, features in features_stream(rows, list(range(len(rows)))):
        feats[str(rows[i]["id"])] = features
        if progress:
            progress(1)
    return feats


def compare_pairs(
    pairs: list[dict], params: Params = Params(), features: dict[str, ArticleFeatures] | None = None, progress: Callable[[int], None] | None = None
) -> list[dict]:
    """``{"pair_id", "score" (0..1), "same_story"}`` per pair, where ``same_story`` is whether the
    clusterer would put ``b`` into a story holding only ``a`` (or the other way round).
    ``progress(1)`` after each article's features."""
    feats = features if features is not None else pair_features(pairs, progress)
    background = DocumentFrequencies(feats.values())  # the file's articles stand in for the window
    out = []
    for pair in pairs:
        a, b = feats[str(pair["a"]["id"])], feats[str(pair["b"]["id"])]
        score = pair_score(a, b, params, background)
        out.append({"pair_id": pair["pair_id"], "score": round(score, 4), "same_story": pair_same_story(a, b, score, params)})
    return out


__all__ = ["check_article", "check_label", "check_pair", "cluster_rows", "compare_pairs", "pair_features", "parse_time", "read_jsonl", "stream_order"]
