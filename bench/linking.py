"""Story linking of the 240 corpus pages in process, ours beside an earlier revision, in one run,
and whether the two decide alike.

    python bench/linking.py [--shared PATH] [--baseline-ref 8a907cd] [--rounds N]

The pages of ``bench/ingest.py``, with its real headlines (``ingest.headline``), are stored once
with stories off (this code's ``newsloom poll --once`` from a local server, untimed). Then, for each code (this one and the ``--baseline-ref``
revision, extracted with ``git archive``; alternating, ``--rounds`` times), a subprocess links
every article of a copy of that database (``Linker.link_pending``, one story worker and the
extraction pool as spare, as ``poll --once`` has them; both warmed before the clock starts) and
reports: wall seconds, the main process's CPU seconds, its worker processes' CPU seconds (their
start and warm-up included), SQL statements by kind (on every engine: the async one and a
``db.Writer``'s), hand-offs to database threads (each call queued to an aiosqlite connection's
thread, each job submitted to a ``db.Writer`` or ``db.Reader`` thread), calls into the
worker pools, text vectors computed, asked for at the articles' turns, asked for only then (the
turn waits for them), and computed but never asked for at a turn. Every article must be linked,
or the run fails. Finally the story assignments (story and duplicate of every article, their
similarity), citations and story states (JSON, key order aside) of the two are compared: the
changes measured here must not change a decision (when they do, the articles with other story
mates are counted and the run fails).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextvars
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(source: str, target: str) -> None:
    """Link every article of a copy (``target``) of ``source``, with whatever ``service`` is on the
    path; print the figures as one JSON line."""
    import sqlalchemy as sa

    from service.config import Settings
    from service.db import create_engine, session_factory
    from service.ingest import workers as pools
    from service.stories.linker import Linker

    shutil.copy(source, target)
    calls: collections.Counter[str] = collections.Counter()
    handoffs = _count_handoffs()
    run = pools.WorkerPool.run

    async def counted(self, function, *args):
        calls[getattr(function, "__name__", str(function))] += 1
        return await run(self, function, *args)

    pools.WorkerPool.run = counted
    asked: dict[tuple, str] = {}
    needed: set[tuple] = set()
    text_vector, features = Linker._text_vector, Linker._features
    at_turn = contextvars.ContextVar("at_turn", default=False)  # set while an article's turn (``_features``) runs

    def tracked(self, article_id, title, text, lang, *more, **options):
        key = (article_id, lang)
        turn = at_turn.get()
        asked.setdefault(key, "turn" if turn else "ahead")
        if turn:
            needed.add(key)
        return text_vector(self, article_id, title, text, lang, *more, **options)

    async def turn(self, *args, **options):
        token = at_turn.set(True)
        try:
            return await features(self, *args, **options)
        finally:
            at_turn.reset(token)

    Linker._text_vector, Linker._features = tracked, turn

    async def link() -> dict:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{target}", extract_workers=1, stories_enabled=True)
        engine = create_engine(settings.database_url)
        statements: collections.Counter[str] = collections.Counter()

        @sa.event.listens_for(sa.Engine, "before_cursor_execute")  # every engine, a db.Writer's too
        def count(conn, cursor, statement, *args):
            statements[statement.split()[0].upper()] += 1

        story, extract = pools.story_pool(settings), pools.service_pool(settings, stories=False)
        assert story is not None
        story.start()
        extract.start()
        await asyncio.gather(story.run(pools.ByName("os:getpid")), extract.run(pools.ByName("os:getpid")))  # warmed
        calls.clear()
        handoffs.clear()
        linker = Linker(settings, session_factory(engine), story)
        linker.spare = extract
        wall, cpu = time.perf_counter(), time.process_time()
        linked = await linker.link_pending()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        handed = sum(handoffs.values())
        workers = _children_cpu()
        story.close()
        extract.close()
        workers = _children_cpu() - workers  # the pools' processes, reaped by close (warm-up included)
        await engine.dispose()
        return {"linked": linked, "wall": wall, "cpu": cpu, "workers": workers, "statements": dict(statements), "handoffs": handed, "calls": dict(calls),
                "vectors": len(asked), "needed": len(needed), "late": sum(asked[k] == "turn" for k in needed),
                "unused": len(set(asked) - needed)}

    print(json.dumps(asyncio.run(link())))


def _count_handoffs() -> collections.Counter[str]:
    """Count hand-offs to database threads from now on: calls queued to an aiosqlite connection's
    thread, and jobs submitted to a thread pool of ``db.Writer`` or ``db.Reader`` (``sqlite-``)."""
    import concurrent.futures

    import aiosqlite.core

    counts: collections.Counter[str] = collections.Counter()
    execute, submit = aiosqlite.core.Connection._execute, concurrent.futures.ThreadPoolExecutor.submit

    async def queued(self, fn, *args, **kwargs):
        counts["aiosqlite"] += 1
        return await execute(self, fn, *args, **kwargs)

    def submitted(self, fn, /, *args, **kwargs):
        if self._thread_name_prefix.startswith("sqlite-"):
            counts["thread"] += 1
        return submit(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = queued
    concurrent.futures.ThreadPoolExecutor.submit = submitted
    return counts


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def decisions(db: Path) -> dict:
    """Every article's story, duplicate and similarity (by its corpus path), the citations, and each
    story's row with its state as canonical JSON, from a linked database."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, url, story_id, duplicate_of, similarity, linked_at IS NOT NULL FROM articles ORDER BY id").fetchall()
        path = {i: url.split("/corpus/")[1] for i, url, *_ in rows}
        citations = sorted((path[a], name, outlet, path.get(cited)) for a, name, outlet, cited in
                           conn.execute("SELECT article_id, name, outlet_id, cited_article_id FROM article_citations"))
        stories = [[*row[:6], hashlib.sha1(json.dumps(json.loads(row[6]), sort_keys=True).encode()).hexdigest()] for row in conn.execute(
            "SELECT id, title, article_count, languages, outlet_ids, first_article_id, state FROM stories ORDER BY id")]
        unlinked = [(i, path[i]) for i, _url, *_rest, linked in rows if not linked]
        failures = dict(conn.execute("SELECT item_id, count || ' x ' || error FROM stage_failures WHERE stage = 'link'"))
    articles = {path[i]: [story, path.get(duplicate), similarity, linked] for i, _url, story, duplicate, similarity, linked in rows}
    if unlinked:  # each named, with the linking failures booked for it (a transient one leaves it to its lease)
        named = "; ".join(f"{i} {p}: {failures.get(i, 'no failure booked')}" for i, p in unlinked)
        raise SystemExit(f"{db}: {len(unlinked)} of {len(rows)} articles not linked: {named}")
    return {"articles": articles, "citations": citations, "stories": stories}


def store_pages(corpus: Path, stored: Path) -> list[tuple[str, str]]:
    """The pages of ``bench/ingest.py`` under ``corpus``, with their real headlines, stored in a new
    SQLite database ``stored`` with stories off (this code's ``newsloom poll --once`` from a local
    server, one extraction worker); returns their (group, key)."""
    from bench.ingest import _pages, headline
    from tests.corpus_feeds import rss
    from tests.server import TestServer

    keys = _pages(corpus, None)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{stored}",
           "NEWSLOOM_EXTRACT_WORKERS": "1", "NEWSLOOM_LOG_LEVEL": "WARNING", "NEWSLOOM_STORIES_ENABLED": "false",
           "NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true", "NEWSLOOM_HOST_MIN_GAP": "0", "NEWSLOOM_HOST_CONCURRENCY": "8"}
    with TestServer(corpus) as server:
        items = [{"title": headline(corpus, group, key), "link": server.url(f"/corpus/{group}/html/{key}.html")} for group, key in keys]
        feed = server.add("/feed.xml", rss(items), Content_Type="application/rss+xml")
        for command in (["migrate"], ["feeds", "add", feed], ["poll", "--once", "--quiet"]):
            subprocess.run([sys.executable, "-m", "service", *command], env=env, cwd=ROOT, check=True, capture_output=True)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--baseline-ref", default="8a907cd", help="git revision to compare with (default: main before this round)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each code, alternating; the fastest counts")
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    from bench.ingest import export_revision

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as old:
        stored = Path(tmp) / "stored.db"
        keys = store_pages(Path(args.shared) / "corpus", stored)
        export_revision(args.baseline_ref, old)
        best: dict[str, dict] = {}
        for round_ in range(args.rounds):
            for side, code in (("baseline", Path(old)), ("ours", ROOT)):
                target = Path(tmp) / f"{side}-{round_}.db"
                child = {**os.environ, "PYTHONPATH": str(code), "NEWSLOOM_LOG_LEVEL": "WARNING"}
                out = subprocess.run([sys.executable, str(ROOT / "bench" / "linking.py"), "--child", str(stored), str(target)],
                                     env=child, cwd=code, check=True, capture_output=True, text=True).stdout
                run = json.loads(out.strip().splitlines()[-1])
                run["decisions"] = decisions(target)
                print(f"{side}: {run['wall']:.1f} s, main CPU {run['cpu']:.2f} s, worker CPU {run['workers']:.2f} s", file=sys.stderr)
                if side not in best or run["wall"] < best[side]["wall"]:
                    best[side] = run
    same = best["baseline"]["decisions"] == best["ours"]["decisions"]
    print(f"{len(keys)} pages, baseline {args.baseline_ref}, fastest of {args.rounds} round(s)")
    print("| code | wall s | main-process CPU s | worker CPU s (with their start) | SQL statements (SELECT / UPDATE / INSERT) | hand-offs to "
          "database threads | link_features calls | text vectors computed | asked for at the turns | asked for only at the turn | never "
          "asked for |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for side, run in best.items():
        st = run["statements"]
        print(f"| {side} | {run['wall']:.1f} | {run['cpu']:.2f} | {run['workers']:.2f} | {sum(st.values())} ({st.get('SELECT', 0)} / {st.get('UPDATE', 0)} / "
              f"{st.get('INSERT', 0)}) | {run.get('handoffs', '?')} | {run['calls'].get('link_features', 0)} | {run['vectors']} | {run['needed']} | {run['late']} "
              f"| {run['unused']} |")
    stories = len(best["ours"]["decisions"]["stories"])
    print(f"\nDecisions: {'the same' if same else 'DIFFERENT'} (every article's story, duplicate and similarity, the citations, "
          f"the {stories} stories' rows and states)")
    if not same:
        moved = _moved(best["baseline"]["decisions"]["articles"], best["ours"]["decisions"]["articles"])
        print(f"{moved} of {len(keys)} articles have other story mates than the baseline's")
        base, ours = best["baseline"]["decisions"], best["ours"]["decisions"]
        print("differing:", ", ".join(part for part in ours if ours[part] != base[part]))
        for citation in sorted(set(base["citations"]) ^ set(ours["citations"])):
            print("citation only in", "ours:" if citation in ours["citations"] else "the baseline:", citation)
        changed = [(one, two) for one, two in zip(base["stories"], ours["stories"], strict=False) if one != two]
        for one, two in changed[:3]:
            print("story row, baseline / ours:", one, two, sep="\n  ")
        raise SystemExit(1)


def _moved(one: dict, other: dict) -> int:
    """Articles (by corpus path) whose story holds other articles in ``other`` than in ``one``
    (``decisions(...)["articles"]``)."""
    def mates(articles: dict) -> dict:
        members: dict = collections.defaultdict(set)
        for path, (story, *_rest) in articles.items():
            members[story].add(path)
        return {path: frozenset(members[story]) for path, (story, *_rest) in articles.items()}

    a, b = mates(one), mates(other)
    return sum(a[path] != b.get(path) for path in a)


if __name__ == "__main__":
    main()
