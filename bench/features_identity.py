"""Story features of this code beside an earlier revision's: the same for every article, and the CPU
each spends on them.

    python bench/features_identity.py [--shared PATH] [--baseline-ref feat14-base] [--rounds N] [--semeval N] [--text-vectors]

The articles: the 240 corpus pages of ``bench/ingest.py`` as the linker reads them (stored with
stories off by ``bench/linking.store_pages``: title, text, language, publication time), then the
first ``--semeval`` (default all, 1,300) distinct articles of corpus/crosslingual/pairs_dev.jsonl.
For each code (this one and ``--baseline-ref``, extracted with ``git archive``; alternating,
``--rounds`` times) a subprocess loads the encoders, computes ``linker.link_features`` of every
article once untimed (so every cache a worker keeps is as warm as in a long-running worker), then
once more timed, and reports the CPU seconds of that pass (``time.process_time``: all its threads)
of the corpus pages and of the SemEval articles. Without ``--text-vectors`` the text encoder is
left out, as the linker's first ``link_features`` call leaves it (the text vector is computed
apart, ``features.text_vector``). Finally every field of every article's ``ArticleFeatures`` of
the two codes is compared (arrays with ``numpy.array_equal`` and their dtypes): any difference
is printed and fails the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(inputs: str, output: str, pages: int, text_vectors: bool) -> None:
    """Features of the articles pickled in ``inputs`` with whatever ``service`` is on the path,
    pickled to ``output`` (one dict of fields an article); print the CPU seconds of the timed
    pass of the first ``pages`` articles and of the rest as one JSON line."""
    from service.stories.linker import link_features
    from service.stories.representation import load_encoders

    with open(inputs, "rb") as handle:
        articles = pickle.load(handle)
    load_encoders()
    for article in articles:  # warm
        link_features(*article, text_vectors)
    cpu, out = [], []
    for part in (articles[:pages], articles[pages:]):
        start = time.process_time()
        out += [link_features(*article, text_vectors) for article in part]
        cpu.append(time.process_time() - start)
    with open(output, "wb") as handle:
        pickle.dump([{f.name: getattr(feats, f.name) for f in dataclasses.fields(feats)} for feats in out], handle)
    print(json.dumps({"pages": cpu[0], "semeval": cpu[1]}))


def _semeval(shared: Path, limit: int | None) -> list[tuple]:
    """(title, text, lang, published) of the distinct articles of the SemEval dev pairs."""
    from service.stories import files

    rows = list(files.pair_articles(files.read_jsonl(shared / "corpus" / "crosslingual" / "pairs_dev.jsonl")).values())
    return [(row.get("title"), row.get("text"), row.get("lang"), files.parse_time(row.get("published"))) for row in rows[:limit]]


def differences(ours: list[dict], theirs: list[dict]) -> list[str]:
    """Each (article index, field) whose values differ, described."""
    import numpy as np

    found = []
    for i, (one, other) in enumerate(zip(ours, theirs, strict=True)):
        for name, value in one.items():
            base = other.get(name)
            if isinstance(value, np.ndarray) or isinstance(base, np.ndarray):
                same = (isinstance(value, np.ndarray) and isinstance(base, np.ndarray) and value.dtype == base.dtype
                        and np.array_equal(value, base))
            else:
                same = value == base
            if not same:
                found.append(f"article {i}: {name} differs")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--baseline-ref", default="HEAD", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each code, alternating; the median CPU counts")
    parser.add_argument("--semeval", type=int, default=None, help="SemEval articles (default: all)")
    parser.add_argument("--text-vectors", action="store_true", help="compute the text vectors too (e5: about 0.2 s an article)")
    parser.add_argument("--child", nargs=4, metavar=("INPUTS", "OUTPUT", "PAGES", "TEXT_VECTORS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]), args.child[3] == "1")
        return
    sys.path.insert(0, str(ROOT))
    from bench.ingest import export_revision
    from bench.linking import store_pages

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as old:
        stored = Path(tmp) / "stored.db"
        store_pages(Path(args.shared) / "corpus", stored)
        with sqlite3.connect(stored) as conn:
            pages = [(title, text, lang, datetime.fromisoformat(published) if published else None) for title, text, lang, published in
                     conn.execute("SELECT title, text, language, published_at FROM articles ORDER BY id")]
        articles = pages + _semeval(Path(args.shared), args.semeval)
        inputs = Path(tmp) / "inputs.pickle"
        inputs.write_bytes(pickle.dumps(articles))
        export_revision(args.baseline_ref, old)
        cpu: dict[str, list[dict]] = {"baseline": [], "ours": []}
        outputs = {}
        for round_ in range(args.rounds):
            for side, code in (("baseline", Path(old)), ("ours", ROOT)):
                output = Path(tmp) / f"{side}-{round_}.pickle"
                env = {**os.environ, "PYTHONPATH": str(code), "NEWSLOOM_LOG_LEVEL": "WARNING"}
                command = [sys.executable, str(ROOT / "bench" / "features_identity.py"), "--child", str(inputs), str(output),
                           str(len(pages)), "1" if args.text_vectors else "0"]
                out = subprocess.run(command, env=env, cwd=code, check=True, capture_output=True, text=True).stdout
                run = json.loads(out.strip().splitlines()[-1])
                cpu[side].append(run)
                outputs[side] = pickle.loads(output.read_bytes())
                print(f"{time.strftime('%H:%M:%S')} {side}: {run['pages'] / len(pages) * 1000:.2f} ms an article (pages), "
                      f"{run['semeval'] / max(1, len(articles) - len(pages)) * 1000:.2f} (SemEval); load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr)
    print(f"{len(pages)} pages + {len(articles) - len(pages)} SemEval articles, baseline {args.baseline_ref}, "
          f"text vectors {'on' if args.text_vectors else 'off'}, median of {args.rounds} round(s), CPU ms an article:")
    for side, runs in cpu.items():
        print(f"  {side}: pages {statistics.median(r['pages'] for r in runs) / len(pages) * 1000:.2f}, SemEval "
              f"{statistics.median(r['semeval'] for r in runs) / max(1, len(articles) - len(pages)) * 1000:.2f}")
    found = differences(outputs["ours"], outputs["baseline"])
    print(f"Features: {'the same' if not found else 'DIFFERENT'} for all {len(articles)} articles")
    if found:
        print("\n".join(found[:20]))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
