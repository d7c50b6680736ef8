"""Whether this code's ``newsloom poll --once`` stores the same articles as an earlier revision's.

    python bench/ingest_identity.py [--shared PATH] [--baseline-ref HEAD] [--workers N] [--stories on|off]

The feed of ``bench/ingest.py`` (the 240 corpus pages, served on 127.0.0.1) is polled once by each
code (``bench.ingest.export_revision`` for the baseline) on a fresh SQLite database, and every
article's extraction is compared by its link: text, text source, title, authors, published,
updated, language and its confidence, canonical URL, site name, image, word count, content hash,
status, error, access and its reason. Prints the differing articles and fields; exits with status
1 when any differs (for a change meant to keep the output, such as a speed-up of the extraction
worker or of the bookings), 0 when all 240 are the same.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import _pages, export_revision, headline, poll_environment  # noqa: E402

FIELDS = ("text", "text_source", "title", "authors", "published_at", "updated_at", "language", "language_confidence",
          "canonical_url", "site_name", "image_url", "word_count", "content_hash", "extraction_status",
          "extraction_error", "access", "access_reason")


def stored_articles(code: Path, feed: str, workers: int, stories: bool) -> dict[str, tuple]:
    """``FIELDS`` of every article ``newsloom poll --once`` of ``code`` stores from ``feed``, by link."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "identity.db"
        env = poll_environment(code, db, workers, stories)
        cli = [sys.executable, "-m", "service"]
        for command in (["migrate"], ["feeds", "add", feed], ["poll", "--once", "--quiet"]):
            subprocess.run([*cli, *command], env=env, cwd=code, check=True, capture_output=True)
        with sqlite3.connect(db) as conn:
            rows = conn.execute(f"SELECT url, {', '.join(FIELDS)} FROM articles").fetchall()
    return {row[0]: row[1:] for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--baseline-ref", default="HEAD", help="git revision of the code to compare with (default: the last commit, for an uncommitted change)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--stories", choices=("on", "off"), default="off")
    args = parser.parse_args()
    from tests.corpus_feeds import rss
    from tests.server import TestServer

    corpus = Path(args.shared) / "corpus"
    keys = _pages(corpus, None)
    with tempfile.TemporaryDirectory() as old, TestServer(corpus) as server:
        export_revision(args.baseline_ref, old)
        items = [{"title": headline(corpus, group, key), "link": server.url(f"/corpus/{group}/html/{key}.html")}
                 for group, key in keys]
        feed = server.add("/feed.xml", rss(items), Content_Type="application/rss+xml")
        base = stored_articles(Path(old), feed, args.workers, args.stories == "on")
        ours = stored_articles(ROOT, feed, args.workers, args.stories == "on")
    differing = 0
    for url in sorted(base.keys() | ours.keys()):
        a, b = base.get(url), ours.get(url)
        if a == b:
            continue
        differing += 1
        if a is None or b is None:
            print(f"{url}: stored by {'this code' if a is None else args.baseline_ref} only")
            continue
        for name, x, y in zip(FIELDS, a, b, strict=True):
            if x != y:
                print(f"{url}: {name}: {str(x)[:80]!r} != {str(y)[:80]!r}")
    print(f"{len(ours)} articles stored (baseline {args.baseline_ref}: {len(base)}), {differing} differing")
    sys.exit(1 if differing or len(ours) != len(keys) else 0)


if __name__ == "__main__":
    main()
