"""The learned part of story similarity: five signals of an article against a story, combined into
one score by small additive models fitted on human similarity judgements.

Signals (``Signals``; ``clustering.signals`` computes them, for a pair of articles with one seen as
a story of one):

- ``lead``: cosine of the title + lead vectors (0.6 × with the story's centroid + 0.4 × the mean of
  the 3 nearest exemplars);
- ``text``: cosine of the article's text vector (multilingual-e5-small over title + body, see
  ``representation.E5Encoder``) with the story's text centroid (None without a text encoder, or
  for a story that has no text vector yet);
- ``entities``: the share of the article's named things and numbers the story mentions (0..1);
- ``lexical``: the share of the article's IDF-weighted terms the story uses (0..1; None when the
  story has no article in the article's language);
- ``length``: natural log of the article's characters (title + body, at most
  ``representation.TEXT_CHARS``), since short texts give noisier cosines;
- ``contradicted``: evidence of another event of the same topic: ``lead`` where the article's
  figures and the story's contradict (``figures.contradict``: both state some and none agrees),
  else 0 (absence is not contradiction). With a non-positive slope it takes back part of the
  ``lead`` evidence, more the closer the two texts otherwise are. Only the models that read
  ``text`` read it (``CONTRADICTIONS``).

Model: each signal ``x``, first clamped to the range seen in training, contributes
``w0·x + Σ_k w_k·max(0, x − knot_k)``, a piecewise-linear function with knots at the signal's
terciles in training; the score is an intercept plus the contributions. Four models predict the
same score, one for each way the two optional signals can be missing (``OPTIONAL``): all five
signals; without ``lexical`` (an article whose language the story lacks: the learned form of
dropping a term and its weight); without ``text``; without both. A model may read fewer signals
than it could: the shipped ones that read ``text`` do not read ``lexical`` (so ``all`` and
``without_lexical`` are one model, and every pair with text vectors, in one language or across
two, is scored on one scale; ``bench/stories_combiner.py``, ``READS_TEXT_NOT_WORDS``). Unit:
the SemEval "Overall" judgement mapped to 0..1 as ``(4 − overall) / 3``, so 1 is "very similar"
and 0 "very dissimilar"; predictions can leave that range a little.

Coefficients: ``combiner.json`` beside this module, written by ``bench/stories_combiner.py`` (ridge
regression on the basis above, slopes of the similarity signals kept non-negative; fitted on the
SemEval-2022 Task 8 training pairs of ``corpus/crosslingual/pairs_dev.jsonl``, each model on the
pairs that have the optional signals it reads (``lexical``: the 609 same-language pairs;
``text``: pairs of two articles with body text); a model without ``lexical`` then has its
intercept moved by its shrunken mean residual over the cross-language pairs; each pair's basis is
the mean of its two directions, as ``clustering.pair_score`` scores it). Its cross-validated
figures are in the file and in docs/benchmarks.md. Only the standard library is needed here.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path

COEFFICIENTS = Path(__file__).with_name("combiner.json")


@dataclass(frozen=True)
class Signals:
    """One article against one story; see the module docstring for each field. ``lexical`` is None
    when the story has no article in the article's language, ``text`` when either side has no text
    vector."""

    lead: float
    text: float | None
    entities: float
    lexical: float | None
    length: float
    contradicted: float = 0.0


SIGNALS = tuple(Signals.__dataclass_fields__)
# Evidence against: signals that are 0 unless the article and the story say different things.
# Linear (no knots), with a non-positive slope in the fitted models, read only by the models that
# read ``text``.
CONTRADICTIONS = ("contradicted",)
# The signals that can be None; the combiner has one model for each subset of them that is missing.
OPTIONAL = ("lexical", "text")


class Model:
    """One additive model: ``{"signals": {name: {"range": [lo, hi], "knots": [...], "weights":
    [w0, w1, ...]}}, "intercept": float}`` over some of the names of ``SIGNALS``."""

    def __init__(self, spec: dict) -> None:
        self.names = [name for name in SIGNALS if name in spec["signals"]]
        parts = [spec["signals"][name] for name in self.names]
        self.ranges = [(float(p["range"][0]), float(p["range"][1])) for p in parts]
        self.knots = [[float(k) for k in p["knots"]] for p in parts]
        self.weights = [float(w) for p in parts for w in p["weights"]]
        self.intercept = float(spec["intercept"])
        if len(self.names) != len(spec["signals"]) or len(self.weights) != len(parts) + sum(len(k) for k in self.knots):
            raise ValueError("combiner: known signal names, one weight per signal plus one per knot expected")

    def basis(self, signals: Signals) -> list[float]:
        """The model's inputs for ``signals`` (len(weights) floats): per signal the clamped value,
        then its hinge ``max(0, x − knot)`` for each knot. Plain floats, not numpy: the clusterer
        scores up to ``Params.top`` stories per article, and this keeps a score near 5 µs."""
        out: list[float] = []
        for name, (lo, hi), knots in zip(self.names, self.ranges, self.knots, strict=True):
            x = min(hi, max(lo, float(getattr(signals, name))))
            out.append(x)
            out.extend(max(0.0, x - knot) for knot in knots)
        return out

    def score(self, signals: Signals) -> float:
        """The predicted similarity (about 0..1, see the module docstring)."""
        return self.intercept + sum(map(operator.mul, self.weights, self.basis(signals)))  # one basis value a weight (``__init__``)


def model_key(missing: Iterable[str]) -> str:
    """The ``combiner.json`` key of the model for the ``missing`` optional signals: ``"all"``, or
    ``"without_"`` and their names in ``OPTIONAL`` order joined by ``"_"``."""
    missing = set(missing)
    names = [name for name in OPTIONAL if name in missing]
    return "without_" + "_".join(names) if names else "all"


class Combiner:
    """The models of ``combiner.json`` (``{"models": {model_key(missing): Model spec over the other
    signals, ...}, ...}``, one for every subset of ``OPTIONAL``): all predict the same score, each
    from the signals present."""

    def __init__(self, spec: dict) -> None:
        self.models: dict[str, Model] = {}
        for size in range(len(OPTIONAL) + 1):
            for missing in combinations(OPTIONAL, size):
                key = model_key(missing)
                if key not in spec["models"]:
                    raise ValueError(f"combiner: no model {key!r}")
                model = self.models[key] = Model(spec["models"][key])
                if set(missing) & set(model.names):
                    raise ValueError(f"combiner: model {key!r} reads a signal it is meant to go without")
        # ``model_for``'s look-up by which of ``OPTIONAL`` are missing, without building the key per score.
        self._by_missing = {
            gone: self.models[model_key(name for name, missing_one in zip(OPTIONAL, gone, strict=True) if missing_one)]
            for gone in itertools.product((False, True), repeat=len(OPTIONAL))
        }

    def model_for(self, signals: Signals) -> Model:
        """The model over the signals of ``signals`` that are not None."""
        return self._by_missing[tuple(getattr(signals, name) is None for name in OPTIONAL)]

    def score(self, signals: Signals) -> float:
        """The predicted similarity (about 0..1, see the module docstring)."""
        return self.model_for(signals).score(signals)


@lru_cache(maxsize=1)
def default_combiner() -> Combiner:
    """The shipped models (``combiner.json``), loaded once per process."""
    return Combiner(json.loads(COEFFICIENTS.read_text(encoding="utf-8")))
