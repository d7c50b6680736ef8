"""Scoring of extracted article bodies, as the ScrapingHub article-extraction benchmark defines it.

Source: https://github.com/scrapinghub/article-extraction-benchmark (README and ``evaluate.py``,
MIT). Re-implemented here from the definition:

* tokens are the ``\\w+`` runs of a text (Unicode word characters, case kept);
* a text's shingles are the multiset of its word 4-grams (a text of 1-3 tokens is one shingle,
  an empty text has none);
* per page, tp/fp/fn are the multiset intersection and the two differences of predicted and true
  shingles, divided by their sum so every page weighs the same;
* precision is averaged over pages with tp + fp > 0, recall over pages with tp + fn > 0 (a page
  with fp = fn = 0 scores 1 for both), and F1 is the harmonic mean of the two averages.
"""

from __future__ import annotations

import re
from collections import Counter
from statistics import mean

_TOKEN = re.compile(r"\w+", re.UNICODE)
SHINGLE = 4


def tokens(text: str | None) -> list[str]:
    """The ``\\w+`` tokens of ``text`` (empty list for None)."""
    return _TOKEN.findall(text or "")


def shingles(text: str | None, n: int = SHINGLE) -> Counter:
    """Multiset of word ``n``-grams of ``text``; a text shorter than ``n`` tokens is one shingle."""
    words = tokens(text)
    if not words:
        return Counter()
    if len(words) < n:
        return Counter([tuple(words)])
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def match(truth: str | None, prediction: str | None) -> tuple[float, float, float]:
    """(tp, fp, fn) of ``prediction`` against ``truth``, normalised to sum to 1 (all 0 when both
    texts are empty)."""
    true, pred = shingles(truth), shingles(prediction)
    tp = sum((true & pred).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def precision(tp: float, fp: float, fn: float) -> float:
    """Precision of one page; 1 when nothing was missed or added."""
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fp) if tp + fp else 0.0


def recall(tp: float, fp: float, fn: float) -> float:
    """Recall of one page; 1 when nothing was missed or added."""
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fn) if tp + fn else 0.0


def page_f1(counts: tuple[float, float, float]) -> float:
    """F1 of one page (0 when precision and recall are both 0)."""
    p, r = precision(*counts), recall(*counts)
    return 2 * p * r / (p + r) if p + r else 0.0


def summarize(pages: list[tuple[float, float, float]], accuracy_at: float = 0.9) -> dict[str, float]:
    """Benchmark figures over pages' (tp, fp, fn): ``precision`` and ``recall`` (page means),
    ``f1`` (from those means) and ``accuracy`` (share of pages whose own F1 >= ``accuracy_at``)."""
    p = mean(precision(*c) for c in pages if c[0] + c[1] > 0)
    r = mean(recall(*c) for c in pages if c[0] + c[2] > 0)
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "accuracy": sum(page_f1(c) >= accuracy_at for c in pages) / len(pages),
    }
