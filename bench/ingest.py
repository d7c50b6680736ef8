"""End-to-end ingest speed with story linking, ours beside the code before issue 13, in one run.

    python bench/ingest.py [--shared PATH] [--workers N] [--baseline-ref 2c92ac8] [--pages N]

A local HTTP server on 127.0.0.1 serves one RSS feed linking to the corpus pages of
``bench/extraction.py --poll`` (240: ``extraction`` and ``extraction-fundus``). For each
configuration, ``newsloom poll --once`` runs in a subprocess on a fresh SQLite database and is
timed from start to exit: this code with stories on (the default) and off, and the code of
``--baseline-ref`` (extracted with ``git archive``) with stories on and off. Plain extraction
(``trafilatura.extract`` over the same pages, already in memory, in a process pool of the same
size) is timed before and after and averaged; each configuration's ratio is its pages per second
over plain extraction's. Only successful work counts: a run must store every page's article
(extracted) and, with stories on, this code must link every one, or the benchmark fails; the
baseline, which gives up linking a few pages, is credited with the articles it linked only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction import _plain_worker  # noqa: E402


def _pages(corpus: Path, limit: int | None) -> list[tuple[str, str]]:
    keys = [("extraction", k) for k in json.loads((corpus / "extraction" / "ground-truth.json").read_text())]
    keys += [("extraction-fundus", k) for k in json.loads((corpus / "extraction-fundus" / "ground-truth.json").read_text())]
    return keys[:limit] if limit else keys


def export_revision(ref: str, into: str) -> None:
    """The tree of git revision ``ref`` of this repository, written into the directory ``into``
    (``git archive``): the baseline's code, run beside this one."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def plain_seconds(corpus: Path, keys: list[tuple[str, str]], workers: int) -> float:
    from multiprocessing import get_context

    pages = [gzip.decompress((corpus / group / "html" / f"{key}.html.gz").read_bytes()) for group, key in keys]
    start = time.perf_counter()
    with get_context("spawn").Pool(workers) as pool:
        pool.map(_plain_worker, pages, chunksize=4)
    return time.perf_counter() - start


def poll_seconds(code: Path, feed: str, workers: int, stories: bool, expected: int, complete: bool) -> tuple[float, int]:
    """Time ``newsloom poll --once`` of ``code`` over ``feed``: (seconds, articles done: stored, and
    linked with stories on). Every article must be stored; with ``complete`` every one must be
    linked too, else only the linked ones count (the baseline gives some up)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        env = {**os.environ, "PYTHONPATH": str(code), "NEWSLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
               "NEWSLOOM_EXTRACT_WORKERS": str(workers), "NEWSLOOM_LOG_LEVEL": "WARNING",
               "NEWSLOOM_STORIES_ENABLED": "true" if stories else "false",
               "NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true", "NEWSLOOM_HOST_MIN_GAP": "0", "NEWSLOOM_HOST_CONCURRENCY": "8"}
        # As the `newsloom` console script of that code runs (see bench/memory.py).
        cli = [sys.executable, "-m", "service" if (code / "service" / "__main__.py").exists() else "service.cli"]
        subprocess.run([*cli, "feeds", "add", feed], env=env, cwd=code, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run([*cli, "poll", "--once", "--quiet"], env=env, cwd=code, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM articles WHERE extraction_status != 'pending'").fetchone()[0]
            linked = conn.execute("SELECT count(*) FROM articles WHERE linked_at IS NOT NULL").fetchone()[0]
    if stored != expected or (stories and complete and linked != expected):
        raise SystemExit(f"{code}: {stored} of {expected} articles stored, {linked} linked: not counted as a run")
    return seconds, linked if stories else stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--baseline-ref", default="2c92ac8", help="git revision of the code to compare with")
    parser.add_argument("--pages", type=int, help="only the first N pages")
    args = parser.parse_args()
    from tests.corpus_feeds import rss
    from tests.server import TestServer

    corpus = Path(args.shared) / "corpus"
    keys = _pages(corpus, args.pages)
    with tempfile.TemporaryDirectory() as old, TestServer(corpus) as server:
        export_revision(args.baseline_ref, old)
        items = [{"title": f"{group} {key}", "link": server.url(f"/corpus/{group}/html/{key}.html")} for group, key in keys]
        feed = server.add("/feed.xml", rss(items), Content_Type="application/rss+xml")
        plain = [plain_seconds(corpus, keys, args.workers)]
        runs = {}
        for name, code, stories in (("baseline, stories on", Path(old), True), ("ours, stories on", ROOT, True),
                                    ("baseline, stories off", Path(old), False), ("ours, stories off", ROOT, False)):
            runs[name] = poll_seconds(code, feed, args.workers, stories, len(keys), complete=code == ROOT)
            print(f"{name}: {runs[name][1] / runs[name][0]:.2f} pages/s ({runs[name][1]} of {len(keys)} done)", file=sys.stderr)
        plain.append(plain_seconds(corpus, keys, args.workers))
    plain_rate = len(keys) / (sum(plain) / len(plain))
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {len(keys)} pages, {args.workers} worker process(es), baseline {args.baseline_ref}")
    print("| configuration | pages done | pages/s | ratio to plain extraction |\n|---|---|---|---|")
    print(f"| plain `trafilatura.extract` pool (mean of before and after) | {len(keys)} | {plain_rate:.1f} | 1.00 |")
    for name, (seconds, done) in runs.items():
        rate = done / seconds
        print(f"| `newsloom poll --once`, {name} | {done} | {rate:.2f} | {rate / plain_rate:.2f} |")


if __name__ == "__main__":
    main()
