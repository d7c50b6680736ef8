"""Fit and cross-validate the cross-language decision (``service/stories/crosslingual.py``) on the
SemEval-2022 Task 8 training pairs, print its precision-recall curve on the German-English pairs
beside the old rule (combined score ≥ the same-language threshold), and write its coefficients.

    python bench/stories_crosslingual.py [--shared ../shared] [--features CACHE.pkl] [--write]

Evidence per pair (``clustering.pair_evidence``: the mean of both directions, as ``pair_score``):
the combiner's score without the ``lexical`` and ``text`` signals (every pair seen as if it
crossed languages, since only words tie a pair to one language), the share of shared
language-independent names, and log(1 + shared gazetteer names and numbers). Target:
``same_story`` (overall ≤ 1.5). Articles are encoded without the e5 text vector, which the
decision does not read; so the "old rule" here (``pair_score`` ≥ the threshold) is the service's
rule without text vectors (``NEWSLOOM_STORY_TEXT_VECTORS=false``), in the same run.

Cross-validation: 5 folds over connected groups of pairs (no article in both a training and a test
fold) × 5 shuffles. In each fold a logistic regression (``Logistic``: L2, C = 1) is fitted on the
training pairs and the probability threshold is the lowest whose precision on the training pairs
is at least ``MIN_PRECISION``; test-fold probabilities and decisions are pooled. The service's
``same_story`` for a cross-language pair is "old rule or the new decision"
(``clustering.pair_same_story``), reported overall and on de-en. ``--write`` fits on all pairs and
writes ``service/stories/crosslingual.json`` with the median fold threshold.
``--features`` keeps the articles' features in a pickle for the next run (encoding the 1,350
articles' title + lead is most of the time, about a minute on an idle core).
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
from service.stories.clustering import DocumentFrequencies, Params, pair_evidence, pair_score  # noqa: E402
from service.stories.features import article_features, screened_articles  # noqa: E402

MIN_PRECISION = 0.8
FOLDS = 5
REPEATS = 5


def load_features(pairs: list[dict], cache: str | None) -> dict:
    """The service's features of every article without the e5 text vector (the decision does not
    read it; see ``clustering.cross_score``), title + lead vectors encoded ``files.BATCH`` at a
    time after ``on_headline``, as ``files.features_stream``; optionally kept in a pickle."""
    if cache and Path(cache).is_file():
        return pickle.loads(Path(cache).read_bytes())
    rows = list(files.pair_articles(pairs).values())
    feats = {}
    for start in range(0, len(rows), files.BATCH):
        chunk = rows[start : start + files.BATCH]
        items, leads, _texts = screened_articles([(r.get("title"), r.get("text")) for r in chunk], texts=None,
                                                 langs=[r.get("lang") for r in chunk])
        for row, (title, text), vector in zip(chunk, items, leads, strict=True):
            feats[str(row["id"])] = article_features(title, text, row.get("lang"), vector=vector, texts=None)
    if cache:
        Path(cache).write_bytes(pickle.dumps(feats))
    return feats


class Logistic:
    """L2-regularised logistic regression (penalty ``||w||² / 2C``, intercept unpenalised, as
    scikit-learn's default ``LogisticRegression``), fitted with scipy's L-BFGS."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> Logistic:
        from scipy.optimize import minimize

        target = y.astype(float)

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:-1], theta[-1]
            z = X @ w + b
            p = 1.0 / (1.0 + np.exp(-z))
            value = np.sum(np.logaddexp(0.0, z) - target * z) + w @ w / (2 * self.C)
            grad = np.append(X.T @ (p - target) + w / self.C, np.sum(p - target))
            return value, grad

        theta = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B").x
        self.coef_, self.intercept_ = theta[None, :-1], theta[-1:]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(X @ self.coef_[0] + self.intercept_[0])))
        return np.column_stack([1 - p, p])


def fit(X: np.ndarray, y: np.ndarray) -> Logistic:
    return Logistic(C=1.0).fit(X, y)


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
        X.append(pair_evidence(a, b).row())
        old_scores.append(pair_score(a, b, Params(), background))
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
            # The operating point is chosen on the training folds' cross-language pairs, the
            # decision's own population (all pairs train the model; few cross the language line).
            cut = threshold_for_precision(model.predict_proba(X[train & cross])[:, 1], gold[train & cross])
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
                      f"median over grouped CV folds of the lowest cut with precision >= {MIN_PRECISION} on the training folds' cross-language pairs",
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
