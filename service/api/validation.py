"""Request checks shared by every route."""

from __future__ import annotations

from fastapi import Request

from service.api.problems import Problem
from service.ingest.feeds.entries import language_named
from service.net.urls import outlet_named
from service.search import SearchQuery, SearchSyntaxError, parse


def _declared(dependant) -> set[str]:
    names = {param.alias or param.name for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """Refuse (422) a query parameter the route does not declare, as bodies refuse unknown fields:
    a misspelt filter (``?lnag=de``) must not silently return the unfiltered list; and one given
    twice (every parameter takes one value), which would silently keep the last."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    unknown = sorted(set(request.query_params) - _declared(dependant))
    if unknown:
        raise Problem(422, f"unknown query parameter(s): {', '.join(repr(u) for u in unknown)}", unknown=unknown)
    repeated = sorted({name for name in request.query_params if len(request.query_params.getlist(name)) > 1})
    if repeated:  # every parameter takes one value: ?feed_id=1&feed_id=2 must not silently mean 2
        raise Problem(422, f"query parameter(s) given more than once: {', '.join(repr(r) for r in repeated)}",
                      repeated=repeated)


async def reject_empty_query_parameters(request: Request) -> None:
    """Refuse (422) a query parameter of the API given empty or blank (``?outlet=``), whatever the
    parameter: an empty filter is neither "no filter" nor a value to match, so a parameter is left
    out rather than sent empty. The problem names them in ``empty`` and lists them in ``errors`` as
    validation errors do (``location`` ``["query", name]``). (The story browser's forms send blank
    fields; its pages drop them instead, ``ui.pages.drop_blank_filters``.)"""
    empty = sorted({name for name, value in request.query_params.multi_items() if not value.strip()})
    if empty:
        raise Problem(422, f"query parameter(s) given empty: {', '.join(repr(e) for e in empty)}; leave a parameter out "
                      "rather than send it empty", empty=empty,
                      errors=[{"location": ["query", name], "message": "must not be empty", "type": "empty"} for name in empty])


def parse_search(q: str | None) -> SearchQuery | None:
    """The ``q`` parameter parsed with ``service.search.parse`` (None when absent). Raises
    ``Problem`` (422) naming what is wrong with a query that cannot be searched."""
    if q is None:
        return None
    try:
        return parse(q)
    except SearchSyntaxError as exc:
        raise Problem(422, f"q: {exc}") from exc


def language_tag(value: str) -> str:
    """``value`` as given when it is a BCP 47 language tag of a known language
    (``entries.language_named``: ``en``, ``pt-BR``, ``zh-Hant-TW``); ``ValueError`` (a 422) else. The
    check of the ``lang`` parameters, the one rule webhook filters' ``languages`` follow too."""
    language_named(value)
    return value


def outlet_name(value: str) -> str:
    """``value`` as given when a host name can be read from it (``urls.outlet_named``: ``welt.de``,
    ``www.welt.de``, a URL of the site); ``ValueError`` (a 422) else. The check of the ``outlet``
    parameter, the one rule webhook filters' ``outlets`` follow too. An outlet no article has yet
    is no error: the list is empty."""
    outlet_named(value)
    return value
