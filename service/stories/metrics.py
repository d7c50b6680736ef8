"""Clustering quality against gold labels: B-cubed (Bagga and Baldwin, 1998, "Entity-based
cross-document coreferencing using the vector space model") and pairwise precision, recall and F1
(as used by Miranda et al., 2018), and Pearson correlation for graded pair similarity."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1, each 0..1."""

    precision: float
    recall: float
    f1: float

    @classmethod
    def of(cls, precision: float, recall: float) -> PRF:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1)

    def as_dict(self) -> dict[str, float]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


def bcubed(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> PRF:
    """B-cubed scores of ``predicted`` cluster labels against ``gold`` (same length, one label per
    item): per item, the share of its predicted cluster in its gold cluster (precision) and of its
    gold cluster in its predicted cluster (recall), averaged over items. Raises ValueError for
    sequences of different or zero length."""
    if len(gold) != len(predicted) or not gold:
        raise ValueError("gold and predicted must be non-empty and of equal length")
    joint = Counter(zip(gold, predicted, strict=True))
    gold_size = Counter(gold)
    pred_size = Counter(predicted)
    precision = sum(n * n / pred_size[p] for (g, p), n in joint.items()) / len(gold)
    recall = sum(n * n / gold_size[g] for (g, p), n in joint.items()) / len(gold)
    return PRF.of(precision, recall)


def pairwise(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> PRF:
    """Pairwise scores: over all unordered pairs of items placed in one predicted cluster
    (precision) or one gold cluster (recall), the share that are together in the other."""
    if len(gold) != len(predicted) or not gold:
        raise ValueError("gold and predicted must be non-empty and of equal length")

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    together = sum(pairs(n) for n in Counter(zip(gold, predicted, strict=True)).values())
    predicted_pairs = sum(pairs(n) for n in Counter(predicted).values())
    gold_pairs = sum(pairs(n) for n in Counter(gold).values())
    return PRF.of(together / predicted_pairs if predicted_pairs else 1.0, together / gold_pairs if gold_pairs else 1.0)


def binary(gold: Sequence[bool], predicted: Sequence[bool]) -> PRF:
    """Precision, recall and F1 of the positive class."""
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p and not g)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g and not p)
    return PRF.of(tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient of two equally long sequences (nan if either is constant)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def group(labels: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Label → indexes of the items carrying it."""
    out: dict[Hashable, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        out[label].append(index)
    return dict(out)
