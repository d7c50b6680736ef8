"""End-to-end ingest speed with story linking, ours beside an earlier revision, in one run.

    python bench/ingest.py [--shared PATH] [--workers N] [--baseline-ref 1c2b1bc] [--pages N] [--rounds N] [--stories both|on|off]

A local HTTP server on 127.0.0.1 serves one RSS feed linking to the corpus pages of
``bench/extraction.py --poll`` (240: ``extraction`` and ``extraction-fundus``). For each
configuration, ``newsloom poll --once`` runs in a subprocess (``python -m service``, or ``python -m
service.cli`` for code without ``service/__main__.py``: what each code's console script imports)
on a fresh SQLite database (made by
``newsloom migrate``, the feed subscribed by ``newsloom feeds add``, both untimed) and is timed
from start to exit, with that time split by the articles' timestamps (``Stages``): this code with stories on (the default) and off, and the code of
``--baseline-ref`` (extracted with ``git archive``) with stories on and off, both compiled to
bytecode first, as an installed service is (``compile_bytecode``). Plain extraction
(``trafilatura.extract`` over the same pages, already in memory, in a process pool of the same
size) is timed before each round and after the last. With ``--rounds N`` every configuration runs
N times, alternating, and the fastest run of each (and of plain extraction) counts; each
configuration's ratio is its pages per second over plain extraction's. Only successful work counts: a run must store every page's article
(extracted) and, with stories on, this code must link every one, or the benchmark fails; the
baseline, which gives up linking a few pages, is credited with the articles it linked only.
Each run's process tree CPU (``Stages.cpu``) is reported too, the median of the rounds, and the
story CPU of each code (stories on minus off, per article): on a machine loaded by other work the
wall-clock rates swing from run to run, the CPU far less.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


def compile_bytecode(code: Path) -> None:
    """Compile the ``service`` package of ``code`` to bytecode (``__pycache__``), as ``pip install``
    and the container image (Dockerfile) do for an installed service. Where ``PYTHONDONTWRITEBYTECODE``
    is set (as on the project machine) an uncompiled tree is compiled anew at every import: about
    0.1 s of a ``poll --once`` run, which plain extraction, imported from site-packages, never pays."""
    import compileall

    if not compileall.compile_dir(str(code / "service"), quiet=1):
        raise SystemExit(f"{code}: the service package does not compile")


@functools.cache
def _truth(path: Path) -> dict:
    return json.loads(path.read_text())


def headline(corpus: Path, group: str, key: str) -> str:
    """The item title a real feed would carry for the page ``key`` of ``group``: the annotated
    title where the corpus has one (``extraction-fundus``), else the page's ``og:title`` or
    ``<title>``. (Until 2026-12-03 every item was titled ``"<group> <key>"``: the story step's
    check that a body is about its headline then dropped most bodies, so no text vector was
    computed and 240 unrelated pages fell into 87 stories, a lighter load than real feeds give.)"""
    truth = _truth(corpus / group / "ground-truth.json")[key]
    if truth.get("title"):
        return truth["title"]
    import lxml.html

    raw = gzip.decompress((corpus / group / "html" / f"{key}.html.gz").read_bytes())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    page = lxml.html.fromstring(text)
    found = page.xpath("string(//meta[@property='og:title']/@content)") or page.xpath("string(//title)")
    return " ".join(found.split()) or f"{group} {key}"


def plain_seconds(corpus: Path, keys: list[tuple[str, str]], workers: int) -> float:
    from multiprocessing import get_context

    pages = [gzip.decompress((corpus / group / "html" / f"{key}.html.gz").read_bytes()) for group, key in keys]
    start = time.perf_counter()
    with get_context("spawn").Pool(workers) as pool:
        pool.map(_plain_worker, pages, chunksize=4)
    return time.perf_counter() - start


def poll_environment(code: Path, db: Path, workers: int, stories: bool) -> dict[str, str]:
    """The environment of a ``newsloom`` command of ``code`` in these benchmarks: the SQLite file
    ``db``, ``workers`` extraction workers, stories on or off, loopback feeds allowed, no gap
    between requests to one host."""
    return {**os.environ, "PYTHONPATH": str(code), "NEWSLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "NEWSLOOM_EXTRACT_WORKERS": str(workers), "NEWSLOOM_LOG_LEVEL": "WARNING",
            "NEWSLOOM_STORIES_ENABLED": "true" if stories else "false",
            "NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true", "NEWSLOOM_HOST_MIN_GAP": "0", "NEWSLOOM_HOST_CONCURRENCY": "8"}


def poll_seconds(code: Path, feed: str, workers: int, stories: bool, expected: int, complete: bool) -> tuple[float, int, Stages]:
    """Time ``newsloom poll --once`` of ``code`` over ``feed``: (seconds, articles done: stored, and
    linked with stories on, ``Stages``). Every article must be stored; with ``complete`` every one
    must be linked too, else only the linked ones count (the baseline gives some up)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        env = poll_environment(code, db, workers, stories)
        # as its `newsloom` console script runs it: code with a service/__main__.py is run by it
        light = (code / "service" / "__main__.py").is_file()
        cli = [sys.executable, "-m", "service" if light else "service.cli"]
        subprocess.run([*cli, "migrate"], env=env, cwd=code, check=True, capture_output=True)
        subprocess.run([*cli, "feeds", "add", feed], env=env, cwd=code, check=True, capture_output=True)
        started = datetime.now(UTC)
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run([*cli, "poll", "--once", "--quiet"], env=env, cwd=code, check=True, capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM articles WHERE extraction_status != 'pending'").fetchone()[0]
            linked = conn.execute("SELECT count(*) FROM articles WHERE linked_at IS NOT NULL").fetchone()[0]
            moments = conn.execute("SELECT min(fetched_at), max(fetched_at), max(linked_at) FROM articles").fetchone()
    if stored != expected or (stories and complete and linked != expected):
        raise SystemExit(f"{code}: {stored} of {expected} articles stored, {linked} linked: not counted as a run")
    first, last, linked_last = (_utc(m) - started if m else None for m in moments)
    stages = Stages(first.total_seconds(), (last - first).total_seconds(),
                    (linked_last - last).total_seconds() if linked_last else None, cpu)
    return seconds, linked if stories else stored, stages


@dataclass
class Stages:
    """Where a run's time went, from the articles' timestamps: seconds from the start of ``poll
    --once`` to the first page stored (process start, imports, worker start and warm-up, the first
    fetch and extraction), from the first page stored to the last, and from the last page stored
    to the last article linked (None with stories off; negative when linking ended first); and
    ``cpu``: CPU seconds (user + system) of the process tree (``poll --once`` and its worker
    processes, which it waits for), a figure the load of other processes changes far less than the
    wall-clock ones."""

    first_page: float
    pages: float
    linking_after: float | None
    cpu: float


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished and waited-for descendants."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--baseline-ref", default="1c2b1bc",
                        help="git revision of the code to compare with (default: main before the ingest-speed work of "
                             "issue 13's last round; 2c92ac8 is the code before issue 13)")
    parser.add_argument("--pages", type=int, help="only the first N pages")
    parser.add_argument("--rounds", type=int, default=1,
                        help="passes over every configuration, alternating; the fastest of each counts (load from "
                             "other processes on the machine then hurts every configuration alike)")
    parser.add_argument("--stories", choices=("both", "on", "off"), default="both", help="which configurations to run")
    args = parser.parse_args()
    from tests.corpus_feeds import rss
    from tests.server import TestServer

    corpus = Path(args.shared) / "corpus"
    keys = _pages(corpus, args.pages)
    modes = [True, False] if args.stories == "both" else [args.stories == "on"]
    with tempfile.TemporaryDirectory() as old, TestServer(corpus) as server:
        export_revision(args.baseline_ref, old)
        for code in (Path(old), ROOT):
            compile_bytecode(code)
        items = [{"title": headline(corpus, group, key), "link": server.url(f"/corpus/{group}/html/{key}.html")}
                 for group, key in keys]
        feed = server.add("/feed.xml", rss(items), Content_Type="application/rss+xml")
        plain: list[float] = []
        runs: dict[str, tuple[float, int, Stages]] = {}
        cpus: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            plain.append(plain_seconds(corpus, keys, args.workers))
            for stories in modes:
                for side, code in (("baseline", Path(old)), ("ours", ROOT)):
                    name = f"{side}, stories {'on' if stories else 'off'}"
                    run = poll_seconds(code, feed, args.workers, stories, len(keys), complete=code == ROOT)
                    print(f"{name}: {run[1] / run[0]:.2f} pages/s ({run[1]} of {len(keys)} done), process tree CPU "
                          f"{run[2].cpu:.1f} s", file=sys.stderr)
                    cpus.setdefault(name, []).append(run[2].cpu)
                    if name not in runs or run[1] / run[0] > runs[name][1] / runs[name][0]:
                        runs[name] = run
        plain.append(plain_seconds(corpus, keys, args.workers))
    plain_rate = len(keys) / min(plain)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {len(keys)} pages, {args.workers} worker process(es), "
          f"baseline {args.baseline_ref}, fastest of {args.rounds} round(s); CPU: median of the rounds")
    print("| configuration | pages done | pages/s | ratio to plain extraction | s to first page stored | s first to last page "
          "| s linking after last page | process tree CPU s |\n|---|---|---|---|---|---|---|---|")
    print(f"| plain `trafilatura.extract` pool (fastest of {len(plain)}) | {len(keys)} | {plain_rate:.1f} | 1.00 | | | | |")
    for name, (seconds, done, stages) in runs.items():
        rate = done / seconds
        after = f"{stages.linking_after:.1f}" if stages.linking_after is not None else "–"
        print(f"| `newsloom poll --once`, {name} | {done} | {rate:.2f} | {rate / plain_rate:.2f} | {stages.first_page:.1f} "
              f"| {stages.pages:.1f} | {after} | {statistics.median(cpus[name]):.1f} |")
    for side in ("baseline", "ours"):
        on, off = cpus.get(f"{side}, stories on"), cpus.get(f"{side}, stories off")
        if on and off:
            story = statistics.median(on) - statistics.median(off)
            print(f"\n{side}: story CPU (process tree, stories on minus off) {story:.1f} s, {1000 * story / len(keys):.0f} ms per article")

if __name__ == "__main__":
    main()
