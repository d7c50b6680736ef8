"""A real HTTP server on 127.0.0.1 for tests, plain and TLS on two ports.

Tests register routes (body, status, headers, or a handler called per request for scripted
exchanges, trickling bodies and rotating redirects). Routes may be keyed by host (``add(path,
host="feeds.example.org")``), so bug cases keep their ``example.org`` URLs: ``resolver`` maps every
``*.example.org`` name (and ``localhost``) to 127.0.0.1, port 80 to the plain port and 443 to the
TLS port, and ``client_ssl`` trusts the server's self-signed certificate for those names. Under
``/corpus/`` the files of ``../shared/corpus`` are served (``.html`` paths from their ``.html.gz``
file, decompressed). Every request is logged (``log``) with its host, path, headers and time.

POST makes it a webhook receiver: every POST is recorded (``posts``) and answered with the statuses
queued for its path in ``post_statuses`` (the last one repeats; default 200). Clear ``release`` to
hold POSTs open until it is set again; ``hold(path)`` holds only the POSTs to ``path`` (a slow
receiver) until the returned event is set.
"""

from __future__ import annotations

import gzip
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Route:
    body: bytes | Iterator[bytes] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunk_delay: float = 0.0
    """With an iterator body: seconds the server waits before each chunk (a trickling server)."""


@dataclass
class Request:
    host: str
    path: str
    headers: dict[str, str]
    at: float
    scheme: str


CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
}

_CERT_LOCK = threading.Lock()
_CERT: tuple[str, str] | None = None


def _certificate() -> tuple[str, str]:
    """A self-signed certificate for example.org, *.example.org and localhost (made once per run)."""
    global _CERT
    with _CERT_LOCK:
        if _CERT is None:
            folder = Path(tempfile.mkdtemp(prefix="newsloom-tls-"))
            cert, key = folder / "cert.pem", folder / "key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=example.org",
                 "-addext", "subjectAltName=DNS:example.org,DNS:*.example.org,DNS:localhost",
                 "-keyout", str(key), "-out", str(cert)],
                check=True, capture_output=True,
            )
            _CERT = (str(cert), str(key))
        return _CERT


Handler = Callable[[Request], Route]


@dataclass
class Post:
    """A POST received by the webhook receiver (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that says nothing when a client hangs up between requests (a
    command under test that exits, or drops a kept-alive connection): the standard one prints the
    ``ConnectionResetError`` traceback to stderr. Any other error is printed as before."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exception(), (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class TestServer:
    __test__ = False  # not a test class (pytest collects Test* names)

    def __init__(self, corpus: Path | None) -> None:
        self.corpus = corpus
        self.routes: dict[str, Route | Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.log: list[Request] = []
        self.dns: dict[str, str] = {}
        """Extra names for ``resolver``: host → IP address (for SSRF tests; never connected to)."""
        self.posts: list[Post] = []
        self.post_statuses: dict[str, list[int]] = {}
        self.release = threading.Event()
        self.release.set()
        self.held: dict[str, threading.Event] = {}
        self._posted = threading.Condition()
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            scheme = "http"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
                request = Request(host, self.path, dict(self.headers), time.monotonic(), self.scheme)
                server.requests.append((self.path, dict(self.headers)))
                server.log.append(request)
                route = server.resolve(host, self.path)
                if callable(route):
                    route = route(request)
                if route is None:
                    route = Route(b"not found", 404, {"Content-Type": "text/plain"})
                self.send_response(route.status)
                if isinstance(route.body, bytes):
                    for name, value in {"Content-Length": str(len(route.body)), **route.headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(route.body)
                    return
                for name, value in {"Connection": "close", **route.headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    for chunk in route.body:
                        if route.chunk_delay:
                            time.sleep(route.chunk_delay)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):  # the client hung up
                    pass
                self.close_connection = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-body (killed): nothing was delivered
                    self.close_connection = True
                    return
                with server._posted:
                    server.posts.append(Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    server._posted.notify_all()
                server.held.get(self.path, server.release).wait(60)
                queue = server.post_statuses.get(self.path, [200])
                status = queue.pop(0) if len(queue) > 1 else queue[0]
                reply = b"ok" if status < 300 else b"receiver says no"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):  # the sender was killed meanwhile
                    self.close_connection = True

        class TLSHandler(RequestHandler):
            scheme = "https"

        self.httpd = _Server(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        self.httpsd = _Server(("127.0.0.1", 0), TLSHandler)
        self.httpsd.daemon_threads = True
        cert, key = _certificate()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpsd.socket = context.wrap_socket(self.httpsd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.tls_port = self.httpsd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.client_ssl = ssl.create_default_context(cafile=cert)
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.httpd, self.httpsd)]

    async def resolver(self, host: str, port: int) -> list[tuple[str, int]]:
        """DNS for the client under test: ``*.example.org`` and ``localhost`` are this server."""
        host = host.lower()
        if host in self.dns:
            return [(self.dns[host], port)]
        if host == "localhost" or host == "example.org" or host.endswith(".example.org"):
            return [("127.0.0.1", {80: self.port, 443: self.tls_port}.get(port, port))]
        raise OSError(f"test resolver: unknown host {host}")

    def outlet_resolver(self, hosts: set[str]) -> Callable[[str, int], Awaitable[list[tuple[str, int]]]]:
        """``resolver`` plus ``hosts`` (outlets' own host names) on 127.0.0.1, port 80 → this
        server's plain port: each outlet of a story test on a host name of its own."""
        names = {host.lower() for host in hosts}

        async def resolve(host: str, port: int) -> list[tuple[str, int]]:
            if host.lower() in names:
                return [("127.0.0.1", self.port if port == 80 else port)]
            return await self.resolver(host, port)

        return resolve

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str | Handler, status: int = 200, *, host: str | None = None, **headers: str) -> str:
        """Serve ``body`` (or call the handler) at ``path``, on any host or only on ``host``; header
        names use underscores (``Content_Type``). Returns the URL (on 127.0.0.1 when no host)."""
        key = f"{host.lower()}{path}" if host else path
        if callable(body):
            self.routes[key] = body
        else:
            data = body.encode() if isinstance(body, str) else body
            self.routes[key] = Route(data, status, {k.replace("_", "-"): v for k, v in headers.items()})
        return f"https://{host}{path}" if host else self.url(path)

    def hold(self, path: str) -> threading.Event:
        """Hold every POST to ``path`` open (for up to 60 s each) until the returned event is set."""
        self.held[path] = threading.Event()
        return self.held[path]

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

    def hits(self, path: str, host: str | None = None) -> list[Request]:
        """The logged requests for ``path`` (on ``host`` if given)."""
        return [r for r in self.log if r.path == path and (host is None or r.host == host)]

    def resolve(self, host: str, path: str) -> Route | Handler | None:
        if f"{host}{path}" in self.routes:
            return self.routes[f"{host}{path}"]
        if path in self.routes:
            return self.routes[path]
        bare = path.split("?")[0]  # a route without a query answers any query
        for key in (f"{host}{bare}", bare):
            if key in self.routes:
                return self.routes[key]
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
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for httpd in (self.httpd, self.httpsd):
            httpd.shutdown()
            httpd.server_close()
