"""The cross-language decision: whether an article belongs to a story that has no article in its
language, decided on language-independent evidence of its own rather than on one cosine against
the same-language threshold.

Design (README, "Stories across languages"): Event Registry keeps per-language clusters
and links them across languages afterwards (Rupnik et al., 2016, "News Across Languages -
Cross-Lingual Document Similarity and Event Tracking", JAIR 55). Newsloom keeps one story per
event whatever the language, and asks a second question when the candidate story lacks the
article's language and the multilingual text vectors cannot be compared (one side has none: a
headline-only article, a story without one, no text encoder on the platform, or
``NEWSLOOM_STORY_TEXT_VECTORS=false``). The words cannot be compared then (the combiner's
``lexical`` signal is missing), nor the texts; where the text vectors can be, the combiner, which
reads them, decides alone (``clustering.joins`` says why), so the evidence is

- ``score``: the combiner's score without ``lexical`` and ``text`` (``clustering.cross_score``:
  the multilingual title + lead vectors, the share of shared names, the length; the e5 text vector
  is left out so that the decision is known before the cascade computes any), the time penalty
  included;
- ``names``: the share of the article's language-independent names (``names.named_things``:
  countries, cities, organisations, languages/nationalities, weekdays, months, numbers and
  people's names) the story mentions;
- ``shared``: how many such names they share, as ``log(1 + n)`` (two reports that share ten
  names are stronger evidence than two that share one of two).

A logistic model turns them into the probability that the pair is one story (SemEval "Overall" ≤
1.5); the article joins when it reaches the threshold chosen for precision ≥ 0.8. Coefficients and
threshold: ``crosslingual.json`` beside this module, written by ``bench/stories_crosslingual.py``
(fitted on every SemEval-2022 Task 8 training pair seen through the language-independent signals
only, since the 73 German-English pairs hold only 10 positives; grouped cross-validation; the
precision-recall curve on the cross-language pairs is in docs/benchmarks.md). Citations are
evidence too, handled in ``clustering.choose`` (a retelling that names its source).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

COEFFICIENTS = Path(__file__).with_name("crosslingual.json")


def is_name_key(key: str) -> bool:
    """Whether an entity key is language-independent by construction: a gazetteer key
    (``c:``/``g:``/``l:``/``d:``/``m:``) or a number."""
    return key[:2] in ("c:", "g:", "l:", "d:", "m:") or key.isdigit()


@dataclass(frozen=True)
class Evidence:
    """One article against one story in another language; see the module docstring."""

    score: float
    names: float
    shared: float

    def row(self) -> list[float]:
        return [self.score, self.names, self.shared]


def evidence(score: float, article_names: frozenset[str] | set[str], story_names: dict | set | frozenset) -> Evidence:
    """``Evidence`` from ``clustering.cross_score`` ``score`` and the two sides'
    ``features.entities`` (the story's: its entity counts)."""
    shared = {e for e in article_names if e in story_names}
    strong = sum(1 for e in shared if is_name_key(e))
    share = len(shared) / max(1, min(len(article_names), len(story_names)))
    return Evidence(score=score, names=share, shared=math.log1p(strong))


class Decision:
    """``{"weights": [w_score, w_names, w_shared], "intercept": b, "threshold": p}``: the logistic
    model and the probability an article needs to join a story of another language."""

    def __init__(self, spec: dict) -> None:
        self.weights = [float(w) for w in spec["weights"]]
        self.intercept = float(spec["intercept"])
        self.threshold = float(spec["threshold"])
        if len(self.weights) != len(Evidence.__dataclass_fields__):
            raise ValueError("crosslingual: one weight per evidence field expected")

    def probability(self, found: Evidence) -> float:
        """P(one story | ``found``), 0..1."""
        z = self.intercept + sum(w * x for w, x in zip(self.weights, found.row(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def same_story(self, found: Evidence) -> bool:
        return self.probability(found) >= self.threshold


@lru_cache(maxsize=1)
def default_decision() -> Decision:
    """The shipped model (``crosslingual.json``), loaded once per process."""
    return Decision(json.loads(COEFFICIENTS.read_text(encoding="utf-8")))
