"""The ``newsloom`` command line.

    newsloom serve [--host H] [--port P]    API and pollers in one process
    newsloom migrate                        create the database or apply its pending migrations (only this creates one)
    newsloom feeds add URL...               subscribe to feeds (as POST /v1/feeds: discovery, first poll)
    newsloom feeds list                     show feeds and their state
    newsloom feeds import FILE              subscribe to the feeds of an OPML file ("-" for stdin)
    newsloom feeds export                   print every subscription as OPML
    newsloom poll --once                    poll every due feed once, fetch and extract new pages
    newsloom extract FILE_OR_URL [--url U]  print one page's extraction as JSON
    newsloom stories cluster FILE.jsonl [-o OUT.jsonl]   online story clustering of a file (+ scores vs gold)
    newsloom stories eval GOLD.jsonl PRED.jsonl          pairwise and B-cubed precision, recall, F1
    newsloom stories compare PAIRS.jsonl [-o OUT.jsonl]  similarity and same-story decision per pair
    newsloom keys create --scope read|admin [--name N]   make an API key (printed once)
    newsloom keys list                      list API keys (never the keys themselves)
    newsloom keys revoke ID                 revoke an API key
    newsloom openapi [--markdown FILE]      print the OpenAPI document (or write the API reference)

Exit status: 0 on success, 1 when the work failed (the error is printed to stderr), 2 for usage errors,
invalid settings and a SQLite database file that does not exist (only ``migrate`` creates one).

This module imports at its top only what parsing the command line and reading the settings need;
each command imports the stack it uses (the database, HTTP and the models: about 0.4 s of CPU), so
``poll`` starts its worker processes first and their spawn and warm-up overlap those imports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import logging
import math
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.config import Settings, get_settings
from service.errors import NewsloomError
from service.heap import collector_paused
from service.ingest.workers import worker_pools

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

    from service.ingest.poller import PollReport
    from service.models import Article, Feed


class CommandError(NewsloomError):
    """A failure to report on stderr with exit status ``exit_status`` (1: the work failed; 2: the
    command cannot run as set up)."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def _require_database(settings: Settings) -> None:
    """``CommandError`` (status 2) when the SQLite file of ``NEWSLOOM_DATABASE_URL`` does not exist:
    only ``newsloom migrate`` creates it, so a command run in the wrong directory does not start
    an empty database there."""
    from service.db import missing_sqlite_file

    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:
        raise CommandError(f"no database at {missing} (NEWSLOOM_DATABASE_URL); create it with `newsloom migrate`, "
                           "or run this where it is", exit_status=2)


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator:
    """Sessions on the database (``_require_database``), after pending migrations are applied
    (``migrate``, when ``db.at_head`` does not find the database at the newest already)."""
    from service.db import at_head, create_engine, migrate, session_factory

    _require_database(settings)
    engine = create_engine(settings.database_url)
    try:
        if not await at_head(engine):
            await asyncio.to_thread(migrate, settings.database_url)
        yield session_factory(engine)
    finally:
        await engine.dispose()


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` (an address or ``localhost``) serves only this machine."""
    from ipaddress import ip_address

    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening, as uvicorn would bind it. Raises
    ``CommandError`` (status 2) when the address cannot be bound (in use, not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)  # now, so that no other process can bind it too; uvicorn's backlog
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot serve on {host}:{port}: {exc.strerror or exc} (is another newsloom serve running there? "
                           "Choose another port: --port, or PORT=… make run)", exit_status=2) from exc
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    """Bind the port first, so that a busy one is refused before any work (migrations, pollers),
    then serve; the application's start-up applies pending migrations (in a child process). Without
    ``--migrate`` a SQLite database that does not exist is refused (``_require_database``), with it
    created."""
    import uvicorn

    from service.api.app import create_app
    from service.api.http11 import ProblemHttpProtocol
    from service.heap import settle_service_heap

    host = args.host or settings.host
    port = args.port or settings.port
    if not settings.auth and not is_loopback(host) and not settings.allow_insecure_bind:
        raise CommandError(
            f"refusing to serve {host} with NEWSLOOM_AUTH=off: anyone who can reach it could change "
            "subscriptions. Turn auth on (create a key with `newsloom keys create --scope admin`), bind "
            "127.0.0.1, or set NEWSLOOM_ALLOW_INSECURE_BIND=true if another layer authenticates requests."
        )
    if not args.migrate:
        _require_database(settings)
    listener = _listen(host, port)  # the application's start-up applies the migrations (creating the database)
    settle_service_heap()
    if not settings.auth:
        logging.getLogger("service").warning("authentication is off (NEWSLOOM_AUTH=off): every request is allowed")
    address = f"http://{f'[{host}]' if ':' in host else host}:{port}"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # uvicorn names the address only of a socket it bound itself
                logging.getLogger("service").info("Newsloom running on %s (press CTRL+C to quit)", address)

    server = Server(uvicorn.Config(
        create_app(settings), host=host, port=port, log_level=settings.log_level.lower(), proxy_headers=False,
        http=ProblemHttpProtocol, log_config=None, timeout_graceful_shutdown=max(1, int(settings.shutdown_grace)),
    ))
    with listener:
        server.run(sockets=[listener])
    if not server.started:  # the application's start-up failed: it logged why
        raise CommandError("the service did not start (the reason is logged above)", exit_status=3)


async def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> None:
    from service.auth import create_key

    async with _database(settings) as sessions, sessions() as session:
        row, key = await create_key(session, args.scope, args.name)
    print(f"created key {row.id} ({row.scope}{', ' + row.name if row.name else ''}); it is shown only now:", file=sys.stderr)
    print(key)


async def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> None:
    from service.storage import keys

    async with _database(settings) as sessions, sessions() as session:
        rows = await keys.every(session)
    print("id\tscope\tprefix\tcreated (UTC)\tlast used (UTC)\trevoked (UTC)\tname")
    fmt = "%Y-%m-%d %H:%M:%S"
    for row in rows:
        print(f"{row.id}\t{row.scope}\t{row.prefix}…\t{row.created_at:{fmt}}\t"
              f"{row.last_used_at.strftime(fmt) if row.last_used_at else '-'}\t"
              f"{row.revoked_at.strftime(fmt) if row.revoked_at else '-'}\t{row.name or ''}")


async def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from service.storage import keys

    async with _database(settings) as sessions, sessions() as session:
        row = await keys.revoke(session, args.id)
    if row is None:
        raise CommandError(f"no API key with id {args.id}")
    print(f"revoked key {row.id} ({row.prefix}…)")


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> None:
    from service.api.app import create_app
    from service.api.reference import markdown

    spec = create_app(settings).openapi()
    if args.markdown:
        Path(args.markdown).write_text(markdown(spec), encoding="utf-8")
        print(f"wrote {args.markdown}")
    else:
        print(json.dumps(spec, indent=2, ensure_ascii=False))


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from service.db import migrate
    from service.net.urls import redact_password

    applied = migrate(settings.database_url)
    for revision in applied:
        print(f"applied {revision}")
    print(f"database at {redact_password(settings.database_url)} is up to date"
          + ("" if applied else " (nothing to apply)"))


async def cmd_feeds_add(args: argparse.Namespace, settings: Settings) -> None:
    """Subscribe as ``POST /v1/feeds`` does (``feeds.subscribe``: SSRF guard, discovery from a
    page, the first poll, refusal of what is not a feed); one line per URL."""
    from service.feeds import SubscribeError, subscribe
    from service.wiring import assemble

    failed = False
    async with _database(settings) as sessions, assemble(settings, sessions=sessions, deliveries=False) as service, \
            sessions() as session:
        for url in args.urls:
            try:
                feed, created = await subscribe(session, service.ingestor, url)
            except SubscribeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed = True
                continue
            print(f"{'added' if created else 'exists'}\t{feed.id}\t{feed.url}")
    if failed:
        raise CommandError("some URLs were not added")


async def cmd_feeds_list(args: argparse.Namespace, settings: Settings) -> None:
    from service.storage import feeds

    async with _database(settings) as sessions, sessions() as session:
        rows = await feeds.listed(session)
    print("id\tstate\tstatus\tarticles\tnext poll (UTC)\turl\tlast error")
    for feed, _outlet, count, _pending in rows:
        next_poll = feed.next_poll()
        print(
            f"{feed.id}\t{feed.state}\t{feed.last_status or '-'}\t{count}\t"
            f"{f'{next_poll:%Y-%m-%d %H:%M:%S}' if next_poll else '-'}\t{feed.url}\t{feed.last_error or ''}"
        )


async def cmd_feeds_import(args: argparse.Namespace, settings: Settings) -> None:
    from service.feeds import import_outlines
    from service.ingest.feeds.opml import OPMLError, parse_opml

    data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        outlines = parse_opml(data)
    except OPMLError as exc:
        raise CommandError(str(exc)) from exc
    async with _database(settings) as sessions, sessions() as session:
        outcomes = await import_outlines(session, outlines, settings)
    for o in outcomes:
        if o.feed is None:
            print(f"refused\t{o.url}\t{o.reason}", file=sys.stderr)
        else:
            status = "added" if o.status == "added" else "exists, credentials updated" if o.credentials_updated else "exists"
            print(f"{status}\t{o.feed.id}\t{o.feed.url}")
    counts = {status: sum(o.status == status for o in outcomes) for status in ("added", "existing", "refused")}
    print(f"added: {counts['added']}, already subscribed: {counts['existing']}, refused: {counts['refused']}")
    if not outcomes:
        raise CommandError(f"no feed imported: {args.file} has no outline with an xmlUrl")
    if counts["refused"] == len(outcomes):
        raise CommandError(f"no feed imported: each of its {len(outcomes)} feeds was refused (the reasons are above)")


async def cmd_feeds_export(args: argparse.Namespace, settings: Settings) -> None:
    from service.ingest.feeds.opml import OPMLFeed, write_opml
    from service.storage import feeds

    async with _database(settings) as sessions, sessions() as session:
        rows = await feeds.listed(session)
    sys.stdout.buffer.write(write_opml([OPMLFeed(f.url, f.title, f.category, f.site_url) for f, *_counts in rows]))
    sys.stdout.flush()


class _Progress:
    """A tqdm bar on stderr over distinct items that ends at its total: an item handled twice counts
    once, the total grows when more items come than were due at the start (they became due
    meanwhile) and shrinks at the end to the items handled when fewer came (put off by a host's
    Retry-After, or taken by another process). Nothing due at the start: no bar until an item
    comes, none at all when none does (the summary line says 0)."""

    def __init__(self, total: int, unit: str, quiet: bool) -> None:
        self.unit, self.quiet = unit, quiet
        self.bar = self._open(total) if total else None
        self.seen: set[int] = set()

    def _open(self, total: int):
        # Imported here, as in the other commands with a bar: ``serve``'s process need not hold tqdm.
        from tqdm import tqdm

        return tqdm(total=total, desc=f"{self.unit}s", unit=self.unit, file=sys.stderr, disable=self.quiet)

    def count(self, item_id: int, **postfix: int) -> None:
        """Count ``item_id`` (once), showing ``postfix`` beside the bar."""
        if item_id in self.seen:
            return
        self.seen.add(item_id)
        if self.bar is None:
            self.bar = self._open(1)
        if self.bar.n >= self.bar.total:
            self.bar.total = self.bar.n + 1
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.total = self.bar.n
            self.bar.close()  # draws the bar once more, at its final total


async def cmd_poll(args: argparse.Namespace, settings: Settings) -> None:
    """Poll the due feeds, then fetch and extract the due pages, with a progress bar each; print
    one summary line. Pages are counted once each, by their last outcome in this run."""
    if not args.once:
        raise CommandError("only `newsloom poll --once` is supported; `newsloom serve` polls continuously", exit_status=2)
    async with contextlib.AsyncExitStack() as stack:
        # The worker processes start first: their spawn and warm-up overlap the imports below and
        # the migration check.
        workers, story_workers = stack.enter_context(worker_pools(settings))
        with collector_paused():
            from service.ingest.poller import PollReport
            from service.models import Article, Feed, utcnow
            from service.storage import articles, feeds, sql
            from service.wiring import assemble

            sessions = await stack.enter_async_context(_database(settings))
        async with sessions() as session:
            due = await sql.count_where(session, Feed, feeds.feed_is_due(utcnow()))
        pages: dict[int, PollReport] = {}  # article id -> the outcome of its last attempt
        async with assemble(settings, sessions=sessions, workers=workers, story_workers=story_workers,
                            deliveries=False) as service:
            with _Progress(due, "feed", args.quiet) as progress:

                def on_feed(feed: Feed, report: PollReport) -> None:
                    progress.count(feed.id, new=report.articles_new)

                report = await service.ingestor.poll_due_feeds(on_feed)
            async with sessions() as session:
                pending = await sql.count_where(session, Article, articles.page_is_due(utcnow()))
            with _Progress(pending, "page", args.quiet) as progress:

                def on_page(article: Article, outcome: PollReport) -> None:
                    progress.count(article.id)
                    pages[article.id] = outcome

                await service.ingestor.process_pages(None, on_page)
    outcomes = PollReport()
    for outcome in pages.values():
        outcomes.add(outcome)
    print(
        f"feeds polled: {report.feeds_polled} (not modified: {report.feeds_not_modified}, failed: {report.feeds_failed}); "
        f"new articles: {report.articles_new}; pages: {len(pages)} (extracted: {outcomes.pages_ok}, "
        f"failed: {outcomes.pages_failed}, to retry later: {outcomes.pages_retrying})"
    )


async def cmd_extract(args: argparse.Namespace, settings: Settings) -> None:
    # The extractor is imported here, not at the top: `newsloom serve` extracts in worker processes only.
    from service.ingest.pages.extracted import ExtractionError
    from service.ingest.pages.extractor import extract_article
    from service.ingest.poller import PAGE_ACCEPT
    from service.net.fetcher import FetchError, create_client, fetch
    from service.net.urls import InvalidURL, check_fetchable

    source = args.source
    url = args.url
    if source.startswith(("http://", "https://")):
        try:
            check_fetchable(source)
            async with create_client(settings) as client:
                result = await fetch(
                    client, source, max_bytes=settings.max_page_bytes, total_timeout=settings.total_timeout, accept=PAGE_ACCEPT
                )
        except (FetchError, InvalidURL) as exc:
            raise CommandError(str(exc)) from exc
        html, url = result.body, url or result.url
    else:
        path = Path(source)
        if not path.is_file():
            raise CommandError(f"no such file: {source}")
        html = path.read_bytes()
        if html[:2] == b"\x1f\x8b":
            html = gzip.decompress(html)
    for library in ("trafilatura", "htmldate", "courlan"):  # their complaints become our one-line error
        logging.getLogger(library).setLevel(logging.CRITICAL)
    try:
        extracted = await asyncio.to_thread(extract_article, html, url)
    except ExtractionError as exc:
        raise CommandError(f"extraction failed: {exc}") from exc
    print(json.dumps(extracted.as_json(), ensure_ascii=False, indent=2))


def _stories_params(settings: Settings):
    from service.stories.linker import params_from

    return params_from(settings)


def _read_rows(path: str, check, unique: str) -> list[dict]:
    """The lines of the JSON Lines file ``path``, each passed to ``check`` (``files.check_*``), the
    member ``unique`` (the line's id) not repeated; ``CommandError`` for a missing or empty file or
    a bad line."""
    from service.stories.files import read_jsonl

    if not Path(path).exists():
        raise CommandError(f"no such file: {path}")
    if not Path(path).is_file():
        raise CommandError(f"not a file: {path}")
    try:
        rows = read_jsonl(path, check, unique)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if not rows:
        raise CommandError(f"{path}: no lines to read")
    return rows


def _check_output(output: str | None) -> None:
    """Fail before the work, not after it, when ``output`` cannot be a file to write."""
    if output and (Path(output).is_dir() or not Path(output).resolve().parent.is_dir()):
        raise CommandError(f"cannot write {output}: not a file in an existing directory")


def _write_lines(rows: list[dict], output: str | None) -> None:
    """``rows`` as JSON Lines to ``output`` or stdout. A lone surrogate in an id (a ``"\\ud800"``
    escape in the input) is written back as that escape."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8", "backslashreplace")
    if not output:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _scores(gold: list, predicted: list) -> dict:
    from service.stories import metrics

    return {"articles": len(gold), "gold_stories": len(set(gold)), "predicted_stories": len(set(predicted)),
            "bcubed": metrics.bcubed(gold, predicted).as_dict(), "pairwise": metrics.pairwise(gold, predicted).as_dict()}


def cmd_stories_cluster(args: argparse.Namespace, settings: Settings) -> None:
    from tqdm import tqdm

    from service.stories.files import check_article, cluster_rows

    rows = _read_rows(args.input, check_article, "id")
    _check_output(args.output)
    with tqdm(total=len(rows), desc="articles", unit="article", file=sys.stderr, disable=args.quiet) as bar:
        labels = cluster_rows(rows, _stories_params(settings), bar.update)
    _write_lines([{"id": row["id"], "story": label} for row, label in zip(rows, labels, strict=True)], args.output)
    if all(row.get("story") is not None for row in rows):
        report = json.dumps(_scores([row["story"] for row in rows], labels))
        print(report, file=sys.stdout if args.output else sys.stderr)


def cmd_stories_eval(args: argparse.Namespace, settings: Settings) -> None:
    from service.stories.files import check_label

    gold = {row["id"]: row["story"] for row in _read_rows(args.gold, check_label, "id") if row.get("story") is not None}
    predicted = {row["id"]: row.get("story") for row in _read_rows(args.predicted, check_label, "id")}
    if not gold:
        raise CommandError(f"{args.gold}: no line has a story")
    missing = [key for key in gold if predicted.get(key) is None]
    if missing:
        raise CommandError(f"{len(missing)} gold articles have no prediction (first: {missing[0]})")
    print(json.dumps(_scores(list(gold.values()), [predicted[key] for key in gold]), indent=2))


def cmd_stories_compare(args: argparse.Namespace, settings: Settings) -> None:
    from tqdm import tqdm

    from service.stories import metrics
    from service.stories.files import check_pair, compare_pairs, pair_articles

    pairs = _read_rows(args.input, check_pair, "pair_id")
    _check_output(args.output)
    params = _stories_params(settings)
    with tqdm(total=len(pair_articles(pairs)), desc="articles", unit="article", file=sys.stderr, disable=args.quiet) as bar:
        results = compare_pairs(pairs, params, progress=bar.update)
    _write_lines(results, args.output)
    graded = [(pair, result) for pair, result in zip(pairs, results, strict=True) if pair.get("overall") is not None]
    if graded:
        report = {}
        for name, subset in (("all", graded), ("de-en", [g for g in graded if {g[0].get("lang1"), g[0].get("lang2")} == {"de", "en"}])):
            if not subset:
                continue
            gold_same = [pair["overall"] <= 1.5 if pair.get("same_story") is None else pair["same_story"] for pair, _r in subset]
            pearson = metrics.pearson([r["score"] for _p, r in subset], [-pair["overall"] for pair, _r in subset])
            report[name] = {
                "pairs": len(subset),
                "pearson": round(pearson, 4) if math.isfinite(pearson) else None,  # None: fewer than two distinct values
                "same_story": metrics.binary(gold_same, [r["same_story"] for _p, r in subset]).as_dict(),
            }
        print(json.dumps(report), file=sys.stdout if args.output else sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsloom", description="Poll news feeds, extract articles, serve them as JSON.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and the pollers")
    serve.add_argument("--host", help="address to bind (default NEWSLOOM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default NEWSLOOM_PORT or 8000)")
    serve.add_argument("--migrate", action="store_true",
                       help="create the SQLite database if it does not exist (make run); migrations are applied either way")
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)

    feeds = sub.add_parser("feeds", help="manage feeds").add_subparsers(dest="feeds_command", required=True)
    add = feeds.add_parser("add", help="subscribe to feeds")
    add.add_argument("urls", nargs="+", metavar="URL")
    add.set_defaults(run=cmd_feeds_add)
    feeds.add_parser("list", help="list feeds").set_defaults(run=cmd_feeds_list)
    opml_in = feeds.add_parser("import", help="subscribe to the feeds of an OPML file")
    opml_in.add_argument("file", metavar="FILE", help='an OPML file, or "-" for standard input')
    opml_in.set_defaults(run=cmd_feeds_import)
    feeds.add_parser("export", help="print subscriptions as OPML").set_defaults(run=cmd_feeds_export)

    poll = sub.add_parser("poll", help="poll due feeds")
    poll.add_argument("--once", action="store_true", help="poll every due feed once, process due pages, exit")
    poll.add_argument("--quiet", action="store_true", help="no progress bars")
    poll.set_defaults(run=cmd_poll)

    extract = sub.add_parser("extract", help="extract one page and print JSON")
    extract.add_argument("source", metavar="FILE_OR_URL", help="an HTML file (may be gzipped) or an http(s) URL")
    extract.add_argument("--url", help="the page's URL, to resolve relative links (for a file)")
    extract.set_defaults(run=cmd_extract)

    stories = sub.add_parser("stories", help="story linking over files").add_subparsers(dest="stories_command", required=True)
    cluster = stories.add_parser("cluster", help="online story clustering of a JSON Lines file of articles")
    cluster.add_argument("input", metavar="INPUT.jsonl", help="one article a line: id, lang, outlet, published, title, text, url")
    cluster.add_argument("-o", "--output", metavar="OUTPUT.jsonl", help='write {"id", "story"} lines here (default stdout)')
    cluster.add_argument("--quiet", action="store_true", help="no progress bar")
    cluster.set_defaults(run=cmd_stories_cluster)
    evaluate = stories.add_parser("eval", help="pairwise and B-cubed scores of predicted stories against gold")
    evaluate.add_argument("gold", metavar="GOLD.jsonl", help='lines with "id" and "story"')
    evaluate.add_argument("predicted", metavar="PRED.jsonl", help='lines with "id" and "story"')
    evaluate.set_defaults(run=cmd_stories_eval)
    compare = stories.add_parser("compare", help="the clusterer's similarity of article pairs")
    compare.add_argument("input", metavar="PAIRS.jsonl", help="one pair a line: pair_id, a, b (articles)")
    compare.add_argument("-o", "--output", metavar="OUT.jsonl", help='write {"pair_id", "score", "same_story"} lines here')
    compare.add_argument("--quiet", action="store_true", help="no progress bar")
    compare.set_defaults(run=cmd_stories_compare)
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create an API key and print it (only this once)")
    create.add_argument("--scope", required=True, choices=["read", "admin"], help="read: GET only; admin: everything")
    create.add_argument("--name", help="what the key is for (shown in keys list)")
    create.set_defaults(run=cmd_keys_create)
    keys.add_parser("list", help="list API keys").set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("id", type=int, metavar="ID")
    revoke.set_defaults(run=cmd_keys_revoke)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document as JSON")
    openapi.add_argument("--markdown", metavar="FILE", help="write the Markdown API reference (docs/api.md) instead")
    openapi.set_defaults(run=cmd_openapi)
    return parser


def _setting_problem(error: ErrorDetails) -> str:
    """One pydantic validation error as ``NEWSLOOM_NAME: message`` (a check across several
    settings names them in its message)."""
    name = "_".join(map(str, error["loc"])).upper()
    message = error["msg"].removeprefix("Value error, ")
    return f"NEWSLOOM_{name}: {message}" if name else message


def _reported_errors() -> tuple[type[Exception], ...]:
    """The exceptions ``main`` reports in one line: ``OSError`` and SQLAlchemy's for a database that
    cannot be reached or used (SQLAlchemy is imported only when an exception is being handled: a
    command that never touches the database does not import it)."""
    import sqlalchemy as sa

    return OSError, sa.exc.DBAPIError  # DBAPIError: asyncpg's "database … does not exist" too


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``newsloom`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(e) for e in exc.errors())
        print(f"error: invalid settings: {problems or exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # a list or dict setting that is not JSON
        print(f"error: invalid settings: {exc} (lists are JSON, e.g. [60, 300])", file=sys.stderr)
        return 2
    from service import logs

    logs.configure(settings.log_level if args.command == "serve" else logging.WARNING, settings.log_format)
    try:
        outcome = args.run(args, settings)
        if asyncio.iscoroutine(outcome):
            asyncio.run(outcome)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except _reported_errors() as exc:  # called only when an exception gets here
        if isinstance(exc, BrokenPipeError):  # `newsloom openapi | head`: the reader left
            return 0
        if isinstance(exc, OSError) and exc.filename is not None:  # an input or output file, not the database
            print(f"error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
            return 1
        from service.net.urls import redact_password

        reason = getattr(exc, "orig", None) or exc
        print(f"error: cannot use the database at {redact_password(settings.database_url)}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
