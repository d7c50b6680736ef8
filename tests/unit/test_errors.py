"""The exception tree of ``service.errors``: every public error class of the service derives from
``NewsloomError``, and the API answers an error of the tree with its problem document."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import httpx
import pytest

import service
from service.api import problems
from service.errors import DocumentError, InputError, NewsloomError
from service.ingest.feeds.dates import UnknownDate
from service.ingest.feeds.entries import FeedParseError
from service.net.ssrf import BlockedAddress
from service.net.urls import InvalidURL, check_fetchable
from tests.conftest import running_app


def _service_modules():
    for info in pkgutil.walk_packages(service.__path__, "service."):
        if info.name.startswith("service._migrations"):
            continue
        yield importlib.import_module(info.name)


def test_every_public_error_class_is_in_the_tree():
    found = {}
    for module in _service_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException) and not name.startswith("_"):
                found[f"{module.__name__}.{name}"] = cls
    assert "service.net.fetcher.FetchError" in found  # the walk reached the modules
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, NewsloomError))
    assert outside == []


def test_branches_keep_what_callers_catch():
    assert issubclass(InvalidURL, ValueError) and issubclass(UnknownDate, ValueError)
    assert issubclass(BlockedAddress, InputError) and issubclass(FeedParseError, DocumentError)
    with pytest.raises(InputError, match="not an absolute http"):
        check_fetchable("ftp://example.org/feed")


def test_errors_of_the_tree_reach_the_client_as_problem_documents(settings):
    """Routes let an ``InputError`` pass (no translation of their own): a refused webhook target
    (``BlockedAddress``, with its rule) and an unreadable OPML upload (``OPMLError``) are 422s."""
    guarded = settings.model_copy(update={"poller_enabled": False, "auth": False, "allow_private_networks": False})
    with running_app(guarded) as base:
        blocked = httpx.post(f"{base}/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook",
                                                                 "event_types": ["article.created"]})
        opml = httpx.post(f"{base}/v1/feeds/import", content=b"<opml><body>", headers={"content-type": "text/x-opml"})
    assert blocked.status_code == 422 and blocked.headers["content-type"] == problems.MEDIA_TYPE
    problem = blocked.json()
    assert problem["rule"] == "loopback" and problem["detail"].endswith("[rule: loopback]")
    assert problem["instance"] == "/v1/subscriptions"
    assert opml.status_code == 422 and opml.headers["content-type"] == problems.MEDIA_TYPE
    assert opml.json()["title"] == "Unprocessable Entity" and opml.json()["detail"]
