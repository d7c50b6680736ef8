"""Request checks shared by every route."""

from __future__ import annotations

from fastapi import Request

from service.api.problems import Problem
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


def parse_search(q: str | None) -> SearchQuery | None:
    """The ``q`` parameter parsed with ``service.search.parse`` (None when absent). Raises
    ``Problem`` (422) naming what is wrong with a query that cannot be searched."""
    if q is None:
        return None
    try:
        return parse(q)
    except SearchSyntaxError as exc:
        raise Problem(422, f"q: {exc}") from exc
