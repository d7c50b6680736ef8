"""The command line against a real SQLite file, and the migrations against the tables."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from service.db import create_engine
from service.search import include_name, include_object
from tests.conftest import ROOT


def _cli(*args: str, db: str, **settings: str) -> subprocess.CompletedProcess:
    env = {"NEWSLOOM_DATABASE_URL": db, "PATH": "/usr/bin:/bin", **settings}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_feeds_add_subscribes_as_the_api_does(tmp_path, server):
    """Discovery from a page, the first poll, and refusal of what is not a feed, as POST /v1/feeds."""
    from tests.corpus_feeds import rss

    feed = server.add("/cli/feed.xml", rss([{"title": "One", "link": "https://cli.example.org/1"}]), Content_Type="application/rss+xml")
    page = server.add("/cli/home.html", f'<html><head><link rel="alternate" type="application/rss+xml" href="{feed}">'
                      "</head><body>Home</body></html>", Content_Type="text/html")
    not_a_feed = server.add("/cli/plain.html", "<html><body>No feeds here</body></html>", Content_Type="text/html")
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert _cli("migrate", db=db).returncode == 0
    added = _cli("feeds", "add", page, not_a_feed, "ftp://example.org/x", db=db, NEWSLOOM_ALLOW_PRIVATE_NETWORKS="true")
    assert added.returncode == 1
    assert added.stdout == f"added\t1\t{feed}\n"  # the page's feed, not the page
    assert "links no feed" in added.stderr or "not a feed" in added.stderr, added.stderr
    assert "ftp://example.org/x" in added.stderr
    again = _cli("feeds", "add", feed, db=db, NEWSLOOM_ALLOW_PRIVATE_NETWORKS="true")
    assert again.returncode == 0 and again.stdout.startswith("exists\t1")
    listed = _cli("feeds", "list", db=db)
    assert listed.returncode == 0
    assert "\tactive\t200\t1\t" in listed.stdout and feed in listed.stdout, listed.stdout  # polled once: one article


def test_feeds_list_shows_no_next_poll_for_a_gone_feed(tmp_path, server):
    """As the API's null ``next_poll_at``: a gone feed is not polled until resumed, so the list shows
    ``-`` in its next-poll column, not the time it would have had."""
    gone = server.add("/cli/gone.xml", b"", 410)
    live = server.add("/cli/live.xml", "<rss version='2.0'><channel><title>Live</title></channel></rss>", Content_Type="application/rss+xml")
    opml = tmp_path / "feeds.opml"
    opml.write_text(f'<opml version="2.0"><body><outline type="rss" xmlUrl="{gone}"/><outline type="rss" xmlUrl="{live}"/></body></opml>')
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {"NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true", "NEWSLOOM_POLL_SPREAD": "0"}
    assert _cli("migrate", db=db).returncode == 0
    assert _cli("feeds", "import", str(opml), db=db, **env).returncode == 0
    polled = _cli("poll", "--once", "--quiet", db=db, **env)
    assert polled.returncode == 0, polled.stderr
    rows = {line.split("\t")[5]: line.split("\t") for line in _cli("feeds", "list", db=db).stdout.splitlines()[1:]}
    assert rows[gone][1:3] == ["gone", "410"] and rows[gone][4] == "-", rows
    assert rows[live][1] == "active" and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[live][4]), rows
    exported = _cli("feeds", "export", db=db).stdout
    assert exported.endswith("</opml>\n") and gone in exported, exported[-200:]  # a whole last line, as a shell expects


def test_poll_without_once_is_a_clear_error(tmp_path):
    result = _cli("poll", db=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert result.returncode == 2 and "poll --once" in result.stderr  # an invalid argument (README: exit 2)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("NEWSLOOM_WEBHOOK_RETRY_SCHEDULE", "notjson", "webhook_retry_schedule"),
    ("NEWSLOOM_DATABASE_URL", "mysql://db/newsloom", "NEWSLOOM_DATABASE_URL: must start with sqlite+aiosqlite://"),
    ("NEWSLOOM_LOG_LEVEL", "LOUD", "NEWSLOOM_LOG_LEVEL: Input should be 'DEBUG'"),
    ("NEWSLOOM_STORY_THRESHOLD", "5", "NEWSLOOM_STORY_THRESHOLD: Input should be less than or equal to 1"),
    ("NEWSLOOM_POLL_MIN_INTERVAL", "100000", "NEWSLOOM_POLL_MIN_INTERVAL (100000) must not exceed NEWSLOOM_POLL_MAX_INTERVAL"),
    ("NEWSLOOM_POLL_SPREAD", "inf", "NEWSLOOM_POLL_SPREAD: Input should be a finite number"),
    ("NEWSLOOM_MAX_RETRY_AFTER", "99999999999999999999", "NEWSLOOM_MAX_RETRY_AFTER: Input should be less than or equal to"),
    ("NEWSLOOM_WEBHOOK_RETRY_SCHEDULE", "[-5]", "each retry delay must be above 0"),
])
def test_bad_settings_are_one_line_errors_with_exit_status_2(tmp_path, name, value, says):
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    result = _cli("keys", "list", db=db, **{name: value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: invalid settings: ") and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "cli.db").exists()


def test_log_level_is_read_in_any_case(tmp_path):
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert _cli("migrate", db=db).returncode == 0
    assert _cli("keys", "list", db=db, NEWSLOOM_LOG_LEVEL="debug").returncode == 0


def test_commands_outside_the_project_do_not_create_an_empty_database(tmp_path):
    """With the default NEWSLOOM_DATABASE_URL (./newsloom.db) in a directory without that file,
    every command that uses the database stops with exit status 2 and a one-line error naming the
    file; only `newsloom migrate` creates it."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "NEWSLOOM_AUTH": "off"}
    (tmp_path / "feeds.opml").write_text("<opml><body/></opml>")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    commands = [("serve", "--port", "1"), ("keys", "list"), ("keys", "create", "--scope", "read"), ("keys", "revoke", "1"),
                ("feeds", "list"), ("feeds", "export"), ("feeds", "import", "feeds.opml"),
                ("feeds", "add", "https://example.org/feed"), ("poll", "--once")]
    for command in commands:
        result = run(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and str(tmp_path / "newsloom.db") in result.stderr, (command, result.stderr)
        assert "newsloom migrate" in result.stderr and result.stdout == ""
        assert list(tmp_path.iterdir()) == [tmp_path / "feeds.opml"], command  # nothing created
    assert run("migrate").returncode == 0 and (tmp_path / "newsloom.db").is_file()
    listed = run("keys", "list")
    assert listed.returncode == 0, listed.stderr


def test_feeds_import_fails_when_no_feed_is_imported(tmp_path):
    """Every outline refused, or none with a feed: exit status 1 (as `feeds add`), each refusal on
    stderr with its reason, nothing subscribed."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert _cli("migrate", db=db).returncode == 0
    refused = tmp_path / "refused.opml"
    refused.write_text('<opml version="2.0"><body><outline type="rss" xmlUrl="file:///etc/passwd"/>'
                       '<outline type="rss" xmlUrl="http://127.0.0.1:8080/feed.xml"/></body></opml>')
    result = _cli("feeds", "import", str(refused), db=db)
    assert result.returncode == 1, result
    assert "refused\tfile:///etc/passwd\t" in result.stderr, result.stderr
    assert "refused\thttp://127.0.0.1:8080/feed.xml\taddress is loopback" in result.stderr, result.stderr
    assert result.stderr.endswith("error: no feed imported: each of its 2 feeds was refused (the reasons are above)\n")
    assert "added: 0, already subscribed: 0, refused: 2" in result.stdout
    empty = tmp_path / "empty.opml"
    empty.write_text('<opml version="2.0"><body><outline text="a folder"/></body></opml>')
    result = _cli("feeds", "import", str(empty), db=db)
    assert result.returncode == 1 and "has no outline with an xmlUrl" in result.stderr, result
    assert _cli("feeds", "list", db=db).stdout.count("\n") == 1  # the header only


def test_serve_on_a_busy_port_stops_before_any_work(tmp_path):
    """`make run` a second time: the port is taken, so `serve --migrate` says so in one line (exit
    status 2) before it creates or migrates the database or starts anything."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli("serve", "--migrate", "--port", str(port), db=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", NEWSLOOM_AUTH="off")
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: cannot serve on 127.0.0.1:{port}: "), result.stderr
    assert "in use" in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no database created


async def test_migrations_match_the_tables(database_url):
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        # The same filters as migrations/env.py: only the search objects the database maintains are skipped.
        opts = {"include_name": include_name, "include_object": include_object}
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync, opts=opts), SQLModel.metadata))
    await engine.dispose()
    assert diff == []


def test_database_errors_do_not_print_the_database_password():
    from tests.conftest import free_port

    url = f"postgresql+asyncpg://newsloom:hunter2@127.0.0.1:{free_port()}/newsloom"  # nothing listens there
    result = _cli("feeds", "list", db=url)
    assert result.returncode == 1 and "cannot use the database at postgresql+asyncpg://newsloom:***@" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_postgresql_database_that_does_not_exist_is_a_one_line_error():
    """Not a traceback: the server answers, the database it names is missing (create it first)."""
    import os

    base = os.environ.get("NEWSLOOM_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("NEWSLOOM_TEST_POSTGRES_URL is not set")
    url = base.rsplit("/", 1)[0] + "/newsloom_no_such_database"
    for command in (("feeds", "list"), ("migrate",)):
        result = _cli(*command, db=url)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: cannot use the database at ") and "does not exist" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_migrate_says_what_it_applied(tmp_path):
    db = f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
    first = _cli("migrate", db=db)
    assert first.returncode == 0, first.stderr
    applied = [line for line in first.stdout.splitlines() if line.startswith("applied ")]
    assert applied[0].startswith("applied 0001 ") and applied[-1].startswith("applied 0015 ")
    again = _cli("migrate", db=db)
    assert again.returncode == 0 and "applied" not in again.stdout and "(nothing to apply)" in again.stdout


def test_the_revisions_read_from_the_scripts_are_alembics():
    """``db._revisions`` (read from the scripts' lines) names the revisions Alembic finds, and the
    ones no script revises are Alembic's heads."""
    from alembic.script import ScriptDirectory

    from service.db import _revisions, alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    revisions, revised = _revisions()
    assert revisions == {script.revision for script in scripts.walk_revisions()}
    assert revisions - revised == set(scripts.get_heads())


async def test_a_database_behind_the_scripts_is_migrated_by_a_command(database_url, tmp_path):
    """``db.at_head`` is True on a migrated database and False on one at a revision the scripts do
    not have, one with no version table and one a revision behind, which ``feeds list``
    (``cli._database``) then migrates (0013–0015 may run again: 0013 sets what it sets, 0014 rebuilds,
    0015 adds what is missing)."""
    import sqlalchemy as sa

    from service.db import at_head, current_revision

    head = await current_revision(database_url)
    engine, empty = create_engine(database_url), create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        assert await at_head(engine)
        assert not await at_head(empty)
        for version in ("9999", "0012"):
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": version})
            assert not await at_head(engine)
    finally:
        await engine.dispose()
        await empty.dispose()
    result = _cli("feeds", "list", db=database_url)
    assert result.returncode == 0, result.stderr
    assert await current_revision(database_url) == head


async def test_poll_once_bars_end_at_their_totals_and_the_summary_counts_pages(server, database_url, sessions):
    """Three feeds of one host are due; the first answers 503 with Retry-After, which puts the
    other two off: the feeds bar ends at 1/1, not 1/3. The summary counts each page once."""
    from datetime import timedelta

    from service.models import Feed, utcnow
    from tests.corpus_feeds import rss
    from tests.test_production import ARTICLE_HTML

    env = {"NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true", "NEWSLOOM_HOST_MIN_GAP": "0", "NEWSLOOM_FEED_CONCURRENCY": "1"}
    feeds = []
    for n in range(3):
        link = server.add(f"/bars/{n}.html", ARTICLE_HTML.format(title=f"Story {n}"), Content_Type="text/html")
        feeds.append(server.add(f"/bars/f{n}.xml", rss([{"title": f"T{n}", "link": link}]), Content_Type="application/rss+xml"))
    gone = server.add("/bars/gone.html", "gone", status=404, Content_Type="text/html")
    feeds.append(server.add("/bars/f3.xml", rss([{"title": "Gone", "link": gone}]), Content_Type="application/rss+xml"))
    assert _cli("feeds", "add", *feeds, db=database_url, **env).returncode == 0
    server.add("/bars/f0.xml", "busy", status=503, Content_Type="text/plain", Retry_After="600")
    async with sessions() as session:
        for feed_id in (1, 2, 3):  # due, the failing one first
            (await session.get(Feed, feed_id)).next_poll_at = utcnow() - timedelta(minutes=10 - feed_id)
        await session.commit()

    run = _cli("poll", "--once", db=database_url, **env)
    assert run.returncode == 0, run.stderr
    bars = {}
    for line in re.split(r"[\r\n]+", run.stderr):
        if found := re.match(r"(feeds|pages):.*?\| (\d+)/(\d+) ", line):
            bars[found[1]] = (int(found[2]), int(found[3]))  # the last state of each bar
    assert bars == {"feeds": (1, 1), "pages": (4, 4)}, run.stderr
    assert run.stdout == ("feeds polled: 1 (not modified: 0, failed: 1); new articles: 0; "
                          "pages: 4 (extracted: 3, failed: 1, to retry later: 0)\n")


def test_poll_once_with_nothing_due_draws_no_empty_bar(tmp_path):
    """Nothing due: the summary line only (each bar was drawn three times at 0, "feeds: 0feed")."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'idle.db'}"
    assert _cli("migrate", db=db).returncode == 0
    run = _cli("poll", "--once", db=db)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.startswith("feeds polled: 0 ") and run.stdout.count("\n") == 1, run.stdout


def test_the_entry_point_imports_nothing_until_called():
    """A spawned worker first imports its parent's main module (the console script imports its entry
    point's module): ``service.__main__`` must not pull in the command line, and ``python -m
    service`` is the ``newsloom`` command."""
    env = {"PATH": "/usr/bin:/bin"}
    probe = "import sys, service.__main__; print(sorted(m for m in ('service.cli', 'sqlalchemy', 'pydantic') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
    usage = subprocess.run([sys.executable, "-m", "service", "--help"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: newsloom"), usage.stderr
