"""Two questions on the SemEval-2022 Task 8 training pairs, each answered by grouped cross-validation
in one run: (1) does the combiner fitted on the language-independent names signal
(``names.named_things``) beat the one fitted on the old entities signal (capitalised words, the code
of 2c92ac8), for the whole ``same_story`` rule of the service (combiner, or across languages the
cross-language decision: on every cross-language pair as before, or only where a side has no text
vector as ``clustering.joins`` now asks it)? (2) how often does the e5 text vector flip a decision, as a function of
the distance of the score without it from the threshold, and which ``Params.text_margin`` follows
from the rule in ``clustering.cascade_near``?

    python bench/stories_names_cascade.py [--shared ../shared] [--signals CACHE.npz]

``--signals`` is the cache of ``bench/stories_combiner.py --signals`` (the pairs' signals with e5
text vectors; computing it is the slow part, several minutes of encoding). Folds, repeats, the
combiner fit, its threshold (best F1 on the training folds) and the cross-language decision (the
logistic model and its cut for precision >= 0.8 on the training folds' cross-language pairs) are
those of ``bench/stories_combiner.py`` and ``bench/stories_crosslingual.py``; every figure is
computed on test folds from models fitted on the training folds only.

Margin rule (2): in each fold, the margin is a quantile of |score with e5 - score without| over the
training pairs whose articles both have text; on the test fold a pair is "skipped" (no e5 needed)
when its score without e5 is farther than the margin from the threshold, and a "missed flip" when
it is skipped but e5 would have changed the decision.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stories_combiner import (  # noqa: E402
    FOLDS,
    REPEATS,
    best_threshold,
    cached_pair_signals,
    fit_models,
    groups_of,
    predict,
)
from bench.stories_crosslingual import fit as fit_logistic  # noqa: E402
from bench.stories_crosslingual import threshold_for_precision  # noqa: E402
from service.stories import crosslingual, files, metrics  # noqa: E402
from service.stories.clustering import Params  # noqa: E402
from service.stories.combiner import SIGNALS  # noqa: E402
from service.stories.features import entities  # noqa: E402
from service.stories.representation import fix_case  # noqa: E402

_ENTITY = re.compile(r"(?<![\w])(?:[A-ZÀ-ÞĀ-Ž][\w'’\-]+|\d[\d.,:]*\d|\d)")


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def old_entities(text: str) -> frozenset[str]:
    """``features.entities`` of 2c92ac8: capitalised words not starting a sentence, and numbers."""
    found: set[str] = set()
    for sentence in re.split(r"(?<=[.!?:])\s+|\n+", text):
        for index, match in enumerate(_ENTITY.finditer(sentence)):
            token = match.group(0)
            if index == 0 and match.start() == 0 and not token[0].isdigit():
                continue
            folded = _fold(token).strip(".,:")
            if folded[:1].isdigit():
                folded = re.sub(r"[.,:]", "", folded)
            if len(folded) > 1 or folded.isdigit():
                found.add(folded)
    return frozenset(found)


def _share(a: frozenset[str], b: frozenset[str]) -> float:
    """``clustering.signals``' entities share of ``a`` against a story of one holding ``b``."""
    return sum(1 for e in a if e in b) / max(1, min(len(a), len(b))) if a else 0.0


def _folds(groups: np.ndarray, repeat: int) -> np.ndarray:
    unique = np.unique(groups)
    order = np.random.default_rng(repeat).permutation(len(unique))
    fold_of = dict(zip(unique, order % FOLDS, strict=True))
    return np.array([fold_of[g] for g in groups])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--signals", metavar="CACHE.npz")
    args = parser.parse_args()
    pairs = files.read_jsonl(Path(args.shared) / "corpus/crosslingual/pairs_dev.jsonl")
    raw, title_only = cached_pair_signals(pairs, args.signals)
    leads = {key: f"{fix_case(row.get('title') or '')}\n{row.get('text') or ''}"[:2000] for key, row in files.pair_articles(pairs).items()}
    langs = {key: row.get("lang") for key, row in files.pair_articles(pairs).items()}
    old = {key: old_entities(text) for key, text in leads.items()}
    new = {key: entities(text, langs[key]) for key, text in leads.items()}
    e = SIGNALS.index("entities")
    raw_old = raw.copy()
    names = []
    for i, pair in enumerate(pairs):
        a, b = str(pair["a"]["id"]), str(pair["b"]["id"])
        raw_old[i, 0, e], raw_old[i, 1, e] = _share(old[a], old[b]), _share(old[b], old[a])
        one, two = crosslingual.evidence(0.0, new[a], new[b]), crosslingual.evidence(0.0, new[b], new[a])
        names.append([(one.names + two.names) / 2, (one.shared + two.shared) / 2])
    names = np.array(names)
    y = np.array([(4 - p["overall"]) / 3 for p in pairs])
    gold = np.array([bool(p["same_story"]) for p in pairs])
    de = np.array([{p["lang1"], p["lang2"]} == {"de", "en"} for p in pairs])
    cross = np.array([p["lang1"] != p["lang2"] for p in pairs])
    groups = groups_of(pairs)
    title_threshold = Params().threshold_title

    text = SIGNALS.index("text")
    has_text = ~np.isnan(raw[:, 0, text]) & ~np.isnan(raw[:, 1, text])

    def service_rule(signals: np.ndarray, decision: str | None) -> np.ndarray:
        """``decision``: None (combiner alone), "always" (or the cross-language decision on every
        cross-language pair, the rule before), "without text" (only where a side has no text
        vector: ``clustering.joins``)."""
        language_free = signals.copy()
        language_free[:, :, [SIGNALS.index("text"), SIGNALS.index("lexical")]] = np.nan
        asked = cross & (~has_text if decision == "without text" else True)
        figures = []
        for repeat in range(REPEATS):
            folds = _folds(groups, repeat)
            scores, decided = np.zeros(len(y)), np.zeros(len(y), dtype=bool)
            for fold in range(FOLDS):
                train, test = folds != fold, folds == fold
                spec = fit_models(signals[train], y[train], list(SIGNALS))
                t = best_threshold(predict(spec, signals[train]), gold[train], title_only[train], title_threshold)
                scores[test] = predict(spec, signals[test])
                decided[test] = scores[test] >= np.where(title_only[test], title_threshold, t)
                if decision:
                    X = np.column_stack([predict(spec, language_free), names])
                    model = fit_logistic(X[train], gold[train])
                    cut = threshold_for_precision(model.predict_proba(X[train & cross])[:, 1], gold[train & cross])
                    decided[test] |= asked[test] & (model.predict_proba(X[test])[:, 1] >= cut)
            every, de_en = metrics.binary(list(gold), list(decided)), metrics.binary(list(gold[de]), list(decided[de]))
            figures.append([metrics.pearson(scores, y), metrics.pearson(scores[de], y[de]), every.precision, every.recall, every.f1,
                            de_en.precision, de_en.recall, de_en.f1])
        return np.mean(figures, axis=0)

    print(f"{len(pairs)} pairs ({int(de.sum())} de-en), grouped CV {FOLDS} folds x {REPEATS} shuffles, e5 text vectors on\n")
    print("| combiner fitted on | same_story rule | Pearson all | de-en | same_story P / R / F1 all | de-en |\n|---|---|---|---|---|---|")
    rules = {None: "combiner alone", "always": "combiner or cross-language decision (before)",
             "without text": "combiner or, where a side has no text vector, cross-language decision (service)"}
    for label, signals, decision in (("old entities signal (capitalised words)", raw_old, None),
                                     ("old entities signal (capitalised words)", raw_old, "always"),
                                     ("names signal (names.py)", raw, None), ("names signal (names.py)", raw, "always"),
                                     ("names signal (names.py)", raw, "without text")):
        m = service_rule(signals, decision)
        rule = rules[decision]
        print(f"| {label} | {rule} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} / {m[3]:.3f} / **{m[4]:.3f}** | "
              f"{m[5]:.3f} / {m[6]:.3f} / **{m[7]:.3f}** |", flush=True)

    without = raw.copy()
    without[:, :, text] = np.nan
    quantiles = (0.90, 0.95, 0.99, 1.0)
    distance, shift, flip = [], [], []
    rule = {q: np.zeros(4, dtype=int) for q in quantiles}  # missed flips, flips, skipped, pairs with text
    margins: dict[float, list[float]] = {q: [] for q in quantiles}
    for repeat in range(REPEATS):
        folds = _folds(groups, repeat)
        for fold in range(FOLDS):
            train, test = folds != fold, folds == fold
            spec = fit_models(raw[train], y[train], list(SIGNALS))
            t = best_threshold(predict(spec, raw[train]), gold[train], title_only[train], title_threshold)
            with_e5, without_e5 = predict(spec, raw), predict(spec, without)
            flips = (with_e5 >= t) != (without_e5 >= t)
            train_text, test_text = train & has_text, test & has_text
            for q in quantiles:
                margin = float(np.quantile(np.abs(with_e5 - without_e5)[train_text], q))
                margins[q].append(margin)
                skip = np.abs(without_e5 - t)[test_text] > margin
                rule[q] += [int((flips[test_text] & skip).sum()), int(flips[test_text].sum()), int(skip.sum()), int(test_text.sum())]
            distance += list(np.abs(without_e5 - t)[test_text])
            shift += list((with_e5 - without_e5)[test_text])
            flip += list(flips[test_text])
    distance, shift, flip = np.array(distance), np.abs(np.array(shift)), np.array(flip)
    print(f"\n{int(has_text.sum())} pairs with text on both sides; test folds pooled over {REPEATS} shuffles (counts per shuffle)\n")
    print("| no-e5 score's distance from the threshold | pairs | decisions e5 flips | share flipped |\n|---|---|---|---|")
    edges = [0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.30, np.inf]
    for lo, hi in itertools.pairwise(edges):
        sel = (distance >= lo) & (distance < hi)
        print(f"| {lo:.2f}-{hi:.2f} | {sel.sum() / REPEATS:.1f} | {flip[sel].sum() / REPEATS:.1f} | "
              f"{flip[sel].mean() if sel.any() else float('nan'):.3f} |")
    print(f"\n|score with e5 - without|: median {np.median(shift):.3f}, 90 % {np.quantile(shift, 0.9):.3f}, 95 % "
          f"{np.quantile(shift, 0.95):.3f}, 99 % {np.quantile(shift, 0.99):.3f}, max {shift.max():.3f}; "
          f"farthest flipped decision {distance[flip].max():.3f} from the threshold\n")
    print("| margin = quantile of the e5 shift on the training folds | margin (median of folds, range) | flips missed on test folds | e5 encodings skipped |")
    print("|---|---|---|---|")
    for q in quantiles:
        missed, flips_, skipped, n = rule[q]
        print(f"| {q:.2f} | {np.median(margins[q]):.3f} ({min(margins[q]):.3f}-{max(margins[q]):.3f}) | "
              f"{missed} of {flips_} ({missed / max(1, flips_):.3f}) | {skipped / n:.3f} |")
    for margin in (0.12, Params().text_margin):
        print(f"fixed margin {margin}: flips missed {int((flip & (distance > margin)).sum())} of {int(flip.sum())}, "
              f"e5 encodings skipped {(distance > margin).mean():.3f}")


if __name__ == "__main__":
    main()
