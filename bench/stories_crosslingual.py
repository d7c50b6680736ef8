"""Fit and cross-validate the cross-language decision (``service/stories/crosslingual.py``) on the
SemEval-2022 Task 8 training pairs, print its precision-recall curve on the German-English pairs
beside the old rule (combined score ≥ the same-language threshold), and write its coefficients.

    python bench/stories_crosslingual.py [--shared ../shared] [--features CACHE.pkl] [--write]

Evidence per pair (``crosslingual.Evidence``, the mean of both directions as ``pair_score``):
the combiner's score with the ``lexical`` signal left out (every pair seen as if it crossed
languages, since only words tie a pair to one language), the share of shared language-independent
names, and log(1 + shared gazetteer names and numbers). Target: ``same_story`` (overall ≤ 1.5).

Cross-validation: 5 folds over connected groups of pairs (no article in both a training and a test
fold) × 5 shuffles. In each fold a logistic regression (scikit-learn, L2, C = 1) is fitted on the
training pairs and the probability threshold is the lowest whose precision on the training pairs
is at least ``MIN_PRECISION``; test-fold probabilities and decisions are pooled. The service's
``same_story`` for a cross-language pair is "old rule or the new decision"
(``clustering.pair_same_story``), reported overall and on de-en. ``--write`` fits on all pairs and
writes ``service/stories/crosslingual.json`` with the median fold threshold.
``--features`` keeps the articles' features in a pickle for the next run (encoding is most of the
time: about 7 minutes on an idle core).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.stories import crosslingual, files, metrics  # noqa: E402
from service.stories.clustering import DocumentFrequencies, Params, StoryState, pair_score, signals  # noqa: E402
from service.stories.combiner import default_combiner  # noqa: E402
from service.stories.features import entities  # noqa: E402
from service.stories.representation import fix_case  # noqa: E402

MIN_PRECISION = 0.8
FOLDS = 5
REPEATS = 5


def load_features(pairs: list[dict], cache: str | None) -> dict:
    """The service's features of every article (``files.pair_features``), entities recomputed
    with the current ``names`` (cheap), optionally cached without them."""
    if cache and Path(cache).is_file():
        feats = pickle.loads(Path(cache).read_bytes())
    else:
        feats = files.pair_features(pairs)
        if cache:
            Path(cache).write_bytes(pickle.dumps(feats))
    rows = files.pair_articles(pairs)
    for key, row in rows.items():
        lead = f"{fix_case(row.get('title') or '')}\n{row.get('text') or ''}"[:2000]
        feats[key] = dataclasses.replace(feats[key], entities=entities(lead, feats[key].lang))
    return feats


def pair_evidence(a, b, background: DocumentFrequencies) -> tuple[list[float], float]:
    """(``Evidence`` row without the lexical signal, ``pair_score`` as the service computes it)."""
    combiner = default_combiner()
    rows = []
    for x, y in ((a, b), (b, a)):
        found = signals(x, StoryState.start(0, y), background.idf(x))
        score = combiner.score(dataclasses.replace(found, lexical=None))
        rows.append(crosslingual.evidence(score, x.entities, y.entities).row())
    return np.mean(rows, axis=0).tolist(), pair_score(a, b, Params(), background)


def fit(X: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0).fit(X, y)


def threshold_for_precision(p: np.ndarray, y: np.ndarray) -> float:
    """The lowest probability cut whose precision on (``p``, ``y``) reaches ``MIN_PRECISION``."""
    for cut in np.round(np.arange(0.05, 0.99, 0.01), 2):
        decided = p >= cut
        if decided.any() and y[decided].mean() >= MIN_PRECISION:
            return float(cut)
    return 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--features", metavar="CACHE.pkl")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    pairs = files.read_jsonl(Path(args.shared) / "corpus/crosslingual/pairs_dev.jsonl")
    feats = load_features(pairs, args.features)
    background = DocumentFrequencies(feats.values())
    X, old_scores, cross = [], [], []
    for pair in pairs:
        a, b = feats[str(pair["a"]["id"])], feats[str(pair["b"]["id"])]
        row, score = pair_evidence(a, b, background)
        X.append(row)
        old_scores.append(score)
        cross.append(pair["lang1"] != pair["lang2"])
    X, old_scores, cross = np.array(X), np.array(old_scores), np.array(cross)
    gold = np.array([bool(p["same_story"]) for p in pairs])
    from bench.stories_combiner import groups_of

    groups = groups_of(pairs)
    old_rule = old_scores >= Params().threshold  # texts only in these pairs' cross-language part
    unique = np.unique(groups)
    pooled_p = np.zeros((REPEATS, len(pairs)))
    figures, cuts = [], []
    for repeat in range(REPEATS):
        order = np.random.default_rng(repeat).permutation(len(unique))
        fold_of = dict(zip(unique, order % FOLDS, strict=True))
        folds = np.array([fold_of[g] for g in groups])
        decided = np.zeros(len(pairs), dtype=bool)
        for fold in range(FOLDS):
            train, test = folds != fold, folds == fold
            model = fit(X[train], gold[train])
            cut = threshold_for_precision(model.predict_proba(X[train])[:, 1], gold[train])
            cuts.append(cut)
            pooled_p[repeat, test] = model.predict_proba(X[test])[:, 1]
            decided[test] = pooled_p[repeat, test] >= cut
        new_rule = old_rule | (cross & decided)
        figures.append([*_prf(gold[cross], decided[cross]), *_prf(gold[cross], new_rule[cross]), *_prf(gold, new_rule)])
    old_cross, old_all = _prf(gold[cross], old_rule[cross]), _prf(gold, old_rule)
    mean = np.mean(figures, axis=0)
    print(f"pairs {len(pairs)}, cross-language {int(cross.sum())} ({int(gold[cross].sum())} same_story)")
    print("| rule | de-en P / R / F1 | all pairs P / R / F1 |\n|---|---|---|")
    print(f"| old: combined score >= {Params().threshold} | {_fmt(old_cross)} | {_fmt(old_all)} |")
    print(f"| cross-language decision alone (CV) | {_fmt(mean[0:3])} | |")
    print(f"| service: old rule or cross-language decision (CV) | {_fmt(mean[3:6])} | {_fmt(mean[6:9])} |")
    print(f"fold thresholds: median {np.median(cuts):.2f} (min {min(cuts):.2f}, max {max(cuts):.2f})")
    print("\nprecision-recall on the de-en pairs (CV probabilities, first shuffle):\n| cut | precision | recall |\n|---|---|---|")
    p = pooled_p[0][cross]
    for cut in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        decided = p >= cut
        prec = gold[cross][decided].mean() if decided.any() else float("nan")
        print(f"| {cut:.1f} | {prec:.3f} | {decided[gold[cross]].mean():.3f} |")
    if args.write:
        model = fit(X, gold)
        spec = {
            "source": "bench/stories_crosslingual.py --write: logistic regression (C = 1) on all SemEval-2022 Task 8 training "
                      "pairs of corpus/crosslingual/pairs_dev.jsonl through their language-independent evidence; threshold: "
                      f"median over grouped CV folds of the lowest cut with training precision >= {MIN_PRECISION}",
            "fitted": date.today().isoformat(),
            "fields": [f.name for f in dataclasses.fields(crosslingual.Evidence)],
            "weights": [round(float(w), 6) for w in model.coef_[0]],
            "intercept": round(float(model.intercept_[0]), 6),
            "threshold": float(np.median(cuts)),
            "cross_validated": {"f1_de_en": round(float(mean[5]), 3), "precision_de_en": round(float(mean[3]), 3),
                                "recall_de_en": round(float(mean[4]), 3), "f1": round(float(mean[8]), 3)},
        }
        crosslingual.COEFFICIENTS.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {crosslingual.COEFFICIENTS}")


def _prf(gold: np.ndarray, decided: np.ndarray) -> tuple[float, float, float]:
    prf = metrics.binary(list(gold), list(decided))
    return prf.precision, prf.recall, prf.f1


def _fmt(values) -> str:
    p, r, f = values
    return f"{p:.3f} / {r:.3f} / **{f:.3f}**"


if __name__ == "__main__":
    main()
