"""A real HTTP server on 127.0.0.1 for tests: serves routes that tests register (body, status,
headers) and, under ``/corpus/``, the files of ``../shared/corpus`` (``.html`` paths are served
from their ``.html.gz`` file, decompressed)."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
}


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


class TestServer:
    """GET: registered routes and the corpus. POST: a webhook receiver that records every request
    and answers with the statuses queued for its path (the last one repeats; default 200). Clear
    ``release`` to make POSTs wait until it is set again."""

    def __init__(self, corpus: Path | None) -> None:
        self.corpus = corpus
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.posts: list[Post] = []
        self.post_statuses: dict[str, list[int]] = {}
        self.release = threading.Event()
        self.release.set()
        self._posted = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                route = server.resolve(self.path)
                if route is None:
                    route = Route(b"not found", 404, {"Content-Type": "text/plain"})
                self.send_response(route.status)
                headers = {"Content-Length": str(len(route.body)), **route.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(route.body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with server._posted:
                    server.posts.append(Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    server._posted.notify_all()
                server.release.wait(60)
                queue = server.post_statuses.get(self.path, [200])
                status = queue.pop(0) if len(queue) > 1 else queue[0]
                reply = b"ok" if status < 300 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str, status: int = 200, **headers: str) -> str:
        """Serve ``body`` at ``path``; header names use underscores (``Content_Type``). Returns the URL."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, status, {k.replace("_", "-"): v for k, v in headers.items()})
        return self.url(path)

    def wait_for_posts(self, count: int, path: str | None = None, timeout: float = 60) -> list[Post]:
        """Block until at least ``count`` POSTs (to ``path``, if given) have arrived; return them.
        Raises AssertionError after ``timeout`` seconds."""
        with self._posted:
            ok = self._posted.wait_for(lambda: len(self.posts_to(path)) >= count, timeout)
            assert ok, f"expected {count} POSTs to {path or 'any path'}, got {len(self.posts_to(path))}"
            return self.posts_to(path)

    def wait_until(self, predicate, timeout: float = 60) -> list[Post]:
        """Block until ``predicate(posts)`` is true for the POSTs so far; return them. Raises
        AssertionError after ``timeout`` seconds."""
        with self._posted:
            assert self._posted.wait_for(lambda: predicate(self.posts), timeout), f"condition not met; {len(self.posts)} POSTs"
            return list(self.posts)

    def posts_to(self, path: str | None) -> list[Post]:
        return [p for p in self.posts if path is None or p.path == path]

    def resolve(self, path: str) -> Route | None:
        if path in self.routes:
            return self.routes[path]
        if self.corpus is not None and path.startswith("/corpus/"):
            relative = path[len("/corpus/"):].split("?")[0]
            target = (self.corpus / relative).resolve()
            if self.corpus.resolve() not in target.parents:
                return None
            if target.suffix == ".html" and not target.exists():
                gz = target.with_name(target.name + ".gz")
                if gz.is_file():
                    return Route(gzip.decompress(gz.read_bytes()), 200, {"Content-Type": CONTENT_TYPES[".html"]})
            if target.is_file():
                return Route(target.read_bytes(), 200, {"Content-Type": CONTENT_TYPES.get(target.suffix, "application/octet-stream")})
        return None

    def __enter__(self) -> TestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
