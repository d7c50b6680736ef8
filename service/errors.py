"""The root of every error Newsloom raises on purpose, and its branches.

Like httpx's ``_exceptions.py``, the tree is drawn here once; each error class lives in the module
whose concern it is and derives from one of these branches::

    NewsloomError                    base: catch this to catch every deliberate Newsloom error
    ├── InputError (ValueError)      input that cannot be used as given: 422 in the API
    │   ├── urls.InvalidURL          not http(s), no host, bad port, too long
    │   ├── ssrf.BlockedAddress      the SSRF guard refuses a scheme or an address (``rule``)
    │   ├── opml.OPMLError           an OPML document that cannot be read
    │   ├── search.SearchSyntaxError a ``q`` the search cannot run
    │   ├── dates.UnknownDate        a date no known form parses
    │   └── feeds.SubscribeError     a URL that cannot be subscribed to (the reason in the message)
    ├── DocumentError                a fetched document that cannot be read
    │   ├── entries.FeedParseError   not a feed in any supported format
    │   ├── decompress.DecodingFailed  a body whose Content-Encoding cannot be undone within the cap
    │   ├── discovery.NoFeedFound    a page that links no feed
    │   └── extracted.ExtractionError  a page trafilatura could not turn into text
    ├── fetcher.FetchError           a fetch that produced no usable body (``url``, ``reason``,
    │   │                            ``status``, ``retry_after``)
    │   ├── FetchTimeout, ResponseTooLarge, HTTPStatusError, RedirectError, ConnectFailed
    │   └── BlockedURL               the SSRF guard refused the URL or a redirect hop (``rule``)
    ├── robots.RobotsUnavailable     robots.txt could not be read (the host counts as unreachable)
    ├── workers.WorkerError          a worker process crashed or ran out of time on one item
    ├── cli.CommandError             a CLI command that cannot run as asked (exit status 1 or 2)
    └── api.problems.Problem         an answer a route gives as an RFC 9457 problem document

The API maps the whole tree to problem documents in one place (``api.problems.install``): a
``NewsloomError`` answers with its ``problem_status`` (``InputError`` 422, others 500) and its ``detail``
and ``extensions``, so a route lets an error of this tree pass instead of translating it.
"""

from __future__ import annotations

from typing import Any


class NewsloomError(Exception):
    """Base of every deliberate Newsloom error. ``problem_status``: the HTTP status an API route
    answers with when the error reaches it (RFC 9110 §15; not ``FetchError.status``, the status a
    fetched server sent); ``detail``: the problem document's one-line ``detail`` (RFC 9457 §3.1.4),
    by default the message; ``extensions``: extra members; ``headers``: extra HTTP headers of the
    answer (a ``Location``, a ``Retry-After``), None for none."""

    problem_status: int = 500
    headers: dict[str, str] | None = None

    @property
    def detail(self) -> str:
        return str(self)

    @property
    def extensions(self) -> dict[str, Any]:
        return {}


class InputError(NewsloomError, ValueError):
    """Input that cannot be used as given (a URL, a document uploaded, a query): the message says
    what is wrong with it. A ``ValueError`` too, so code that validates values catches it."""

    problem_status = 422


class DocumentError(NewsloomError):
    """A fetched document (feed, page, compressed body) that cannot be read: bad remote input,
    recorded on the feed or page it came from, never retried as if the network had failed."""
