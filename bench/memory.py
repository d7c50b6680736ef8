"""Peak memory of ``newsloom serve`` while it polls feeds and extracts their pages, this code beside
a baseline revision, in one run.

    python bench/memory.py [--shared PATH] [--feeds 4] [--pages 240] [--stories] [--workers N]
                           [--baseline-ref 1c2b1bc] [--hide py3langid ...] [--absent rich pygments ...]

A local HTTP server on 127.0.0.1 (``tests.server.TestServer``) serves ``--feeds`` RSS feeds that
link, between them, to the first ``--pages`` corpus pages of ``bench/ingest.py`` (``extraction``
and ``extraction-fundus``). For each contender — the code of ``--baseline-ref`` (extracted with
``git archive``) and this code — ``newsloom migrate`` makes a fresh SQLite database, ``newsloom
serve`` starts on it (auth off, stories off unless ``--stories``, ``NEWSLOOM_EXTRACT_WORKERS`` left
to the service's default unless ``--workers``), the feeds are subscribed with ``POST /v1/feeds``,
and the run ends when every page's article is extracted (and, with ``--stories``, linked). A thread
samples the resident set size (RSS, psutil) of the process tree every 100 ms from before the first
subscription to the end. A run that does not store every article fails the benchmark.

Both contenders run with this interpreter and its packages. ``--hide NAME`` makes the distribution
``NAME`` unimportable for this code's run (a module of that name that raises ImportError, first
on ``PYTHONPATH``), as a fresh install of this code, which no longer depends on it, would have it:
trafilatura imports py3langid, and numpy with it, whenever it is installed. ``--absent NAME``
hides ``NAME`` from both runs: a distribution that only the test extra installs, which an
installation of either code does not have but which a library imports when it finds it (httpx
imports rich and pygments, 5 MiB in each process, for its command line).

Prints Markdown for ``docs/benchmarks.md`` ("Memory"): per contender, the peak RSS and the peak
PSS (proportional set size: pages shared between processes divided among them) of each process
(main process, each worker, multiprocessing helpers), and the peak of the tree's sums (one sample:
the processes' peaks need not coincide). RSS counts a shared page once per process, so its sum is
an upper bound of the memory the tree uses; the PSS sum is that memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 2**20


@dataclass
class Peaks:
    """Peak RSS and PSS (bytes) per process, keyed by pid, with its role; and the peaks of the
    tree's sums."""

    roles: dict[int, str] = field(default_factory=dict)
    rss: dict[int, int] = field(default_factory=dict)
    pss: dict[int, int] = field(default_factory=dict)
    total: int = 0
    total_pss: int = 0


def _role(process: psutil.Process, main_pid: int) -> str:
    if process.pid == main_pid:
        return "main process"
    command = " ".join(process.cmdline())
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    if "forkserver" in command:
        return "fork server"
    return "worker process"


def sample(main: psutil.Process, peaks: Peaks, stop: threading.Event) -> None:
    """Add the RSS and PSS of ``main`` and its descendants to ``peaks`` every 100 ms until ``stop``."""
    while not stop.wait(0.1):
        total = total_pss = 0
        try:
            processes = [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            try:
                memory = process.memory_full_info()
                if process.pid not in peaks.roles:
                    peaks.roles[process.pid] = _role(process, main.pid)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            total += memory.rss
            total_pss += memory.pss
            peaks.rss[process.pid] = max(peaks.rss.get(process.pid, 0), memory.rss)
            peaks.pss[process.pid] = max(peaks.pss.get(process.pid, 0), memory.pss)
        peaks.total = max(peaks.total, total)
        peaks.total_pss = max(peaks.total_pss, total_pss)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _done(db: Path, stories: bool) -> tuple[int, int]:
    """(articles stored with their page extracted or given up, articles linked into stories)."""
    with sqlite3.connect(db, timeout=30) as conn:
        stored = conn.execute("SELECT count(*) FROM articles WHERE extraction_status != 'pending'").fetchone()[0]
        linked = conn.execute("SELECT count(*) FROM articles WHERE linked_at IS NOT NULL").fetchone()[0] if stories else 0
    return stored, linked


def run(code: Path, feeds: list[str], expected: int, stories: bool, workers: int | None,
        hide: list[str]) -> tuple[Peaks, float]:
    """Serve ``code`` on a fresh database, with the distributions ``hide`` unimportable, subscribe
    ``feeds``, wait until ``expected`` articles are done; (peaks, seconds from the first
    subscription to the end)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        hidden = Path(tmp) / "hidden"
        hidden.mkdir()
        for name in hide:
            (hidden / f"{name}.py").write_text(f"raise ImportError('{name} is not a dependency of this code')\n")
        env = {**os.environ, "PYTHONPATH": f"{hidden}{os.pathsep}{code}", "NEWSLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
               "NEWSLOOM_AUTH": "off", "NEWSLOOM_LOG_LEVEL": "WARNING", "NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true",
               "NEWSLOOM_STORIES_ENABLED": "true" if stories else "false",
               "NEWSLOOM_HOST_MIN_GAP": "0", "NEWSLOOM_HOST_CONCURRENCY": "8"}
        env.pop("NEWSLOOM_EXTRACT_WORKERS", None)
        if workers:
            env["NEWSLOOM_EXTRACT_WORKERS"] = str(workers)
        # As the `newsloom` console script of that code runs: `service` where it has a __main__
        # (whose workers do not import the command line again), else `service.cli`.
        cli = [sys.executable, "-m", "service" if (code / "service" / "__main__.py").exists() else "service.cli"]
        subprocess.run([*cli, "migrate"], env=env, cwd=tmp, check=True, capture_output=True)
        port = _free_port()
        proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peaks, stop = Peaks(), threading.Event()
        sampler = threading.Thread(target=sample, args=(psutil.Process(proc.pid), peaks, stop))
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=120) as client:
                for _ in range(600):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if proc.poll() is not None:
                        raise SystemExit(f"{code}: newsloom serve exited: {proc.stderr.read()[-2000:]}")
                    time.sleep(0.2)  # waiting for a separate process to listen, not synchronising a test
                sampler.start()
                start = time.perf_counter()
                for url in feeds:
                    client.post("/v1/feeds", json={"url": url}).raise_for_status()
            deadline = time.monotonic() + 1800
            while (done := _done(db, stories)) != (expected, expected if stories else 0):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{code}: {done[0]} of {expected} articles stored, {done[1]} linked: not counted")
                time.sleep(0.5)
            seconds = time.perf_counter() - start
        finally:
            stop.set()
            if sampler.is_alive():
                sampler.join()
            proc.terminate()
            proc.wait(60)
    return peaks, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--feeds", type=int, default=4)
    parser.add_argument("--pages", type=int, default=240, help="corpus pages linked from the feeds (at most 240)")
    parser.add_argument("--stories", action="store_true", help="link articles into stories (default: stories off)")
    parser.add_argument("--workers", type=int, help="NEWSLOOM_EXTRACT_WORKERS (default: the service's default)")
    parser.add_argument("--baseline-ref", default="1c2b1bc", help="git revision of the code to compare with")
    parser.add_argument("--hide", nargs="*", default=[], help="distributions this code's run cannot import")
    parser.add_argument("--absent", nargs="*", default=[],
                        help="distributions neither run can import (installed here for the tests only)")
    args = parser.parse_args()
    from bench.ingest import _pages, export_revision
    from tests.corpus_feeds import rss
    from tests.server import TestServer

    corpus = Path(args.shared) / "corpus"
    keys = _pages(corpus, args.pages)
    with tempfile.TemporaryDirectory() as old, TestServer(corpus) as server:
        export_revision(args.baseline_ref, old)
        feeds = []
        for f in range(args.feeds):
            items = [{"title": f"{group} {key}", "link": server.url(f"/corpus/{group}/html/{key}.html")}
                     for group, key in keys[f::args.feeds]]
            feeds.append(server.add(f"/feed-{f}.xml", rss(items), Content_Type="application/rss+xml"))
        results = {}
        for name, code, hide in ((f"baseline ({args.baseline_ref})", Path(old), args.absent),
                                 ("ours", ROOT, [*args.absent, *args.hide])):
            results[name] = run(code, feeds, len(keys), args.stories, args.workers, hide)
            print(f"{name}: peak {results[name][0].total / MIB:.0f} MiB", file=sys.stderr)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load}, {platform.machine()}, Python "
          f"{platform.python_version()}, {len(keys)} pages in {args.feeds} feeds, stories "
          f"{'on' if args.stories else 'off'}, NEWSLOOM_EXTRACT_WORKERS {args.workers or 'default'} ({os.cpu_count()} CPUs)"
          + (f", hidden from ours: {', '.join(args.hide)}" if args.hide else "")
          + (f", hidden from both: {', '.join(args.absent)}" if args.absent else ""))
    print("| code | process | peak RSS (MiB) | peak PSS (MiB) |\n|---|---|---|---|")
    for name, (peaks, seconds) in results.items():
        for pid in sorted(peaks.rss, key=lambda p: (peaks.roles[p] != "main process", p)):
            print(f"| {name} | {peaks.roles[pid]} | {peaks.rss[pid] / MIB:.0f} | {peaks.pss[pid] / MIB:.0f} |")
        print(f"| {name} | **tree (peak of the sums)**, {seconds:.0f} s to ingest | **{peaks.total / MIB:.0f}** "
              f"| **{peaks.total_pss / MIB:.0f}** |")
    print(json.dumps({name: round(peaks.total / MIB) for name, (peaks, _s) in results.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
