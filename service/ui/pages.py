"""The story browser's pages (HTML, server-rendered with Jinja2) under ``/ui``, and ``/`` sending
browsers there. Every page reads through the API's own functions (``list_stories``,
``read_story``, ``get_article``), so a page costs the statements of the API call it mirrors.

Errors are pages too: a refused key shows the key form (401/403), anything else a short page with
the status and the API's ``detail`` (404 story or article, also for an id that is not a number;
422 filter; 429 rate limit with ``Retry-After``); so are the errors answered before a page's route
runs (``ERRORS`` in this package).

Auth (``NEWSLOOM_AUTH=on``): a plain link cannot carry ``Authorization: Bearer``, so the key form
posts the key to ``/ui/key``, which checks it with the API's own check (``check_key``, read scope)
and keeps it in a cookie: HttpOnly (no script reads it), SameSite=Lax, Path=/ui, Secure over HTTPS,
gone when the browser closes. Every page checks the key again, as the API does on every request
(a revoked key stops working at once, and counts against its rate limit). A request may send
``Authorization: Bearer`` instead. The key never appears in a URL. The pages only read: the only
POSTs keep and forget the key."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials

from service.api.deps import ReaderDep
from service.api.problems import Problem
from service.api.routes.articles import get_article
from service.api.routes.stories import (
    CursorParam,
    LangParam,
    LimitParam,
    MinLanguagesParam,
    MinOutletsParam,
    OutletParam,
    SearchParam,
    list_stories,
    read_story,
)
from service.api.schemas import MAX_ID
from service.api.security import bearer, check_key
from service.ui.timeline import lay_out

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

HERE = FilePath(__file__).parent
STATIC = HERE / "static"
COOKIE = "newsloom_key"
PAGE_SIZE = 25
"""Stories per page of the list."""
HEADERS = {
    # Everything is served by the service itself: no CDN, no inline script or style.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def age(moment: datetime, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in words: "just now", "5 min ago", "3 h ago", "4 days ago",
    "7 months ago", "2 years ago"."""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size, limit in (("min", 60, 60), ("h", 3600, 48), ("days", 86400, 60), ("months", 30.44 * 86400, 24)):
        if seconds < size * limit:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds // (365.25 * 86400))} years ago"


def after(delta: timedelta) -> str:
    """A time since the first report: "+45 min", "+2 h 30 min", "+3 d 4 h"."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"+{days} d {hours} h" if hours else f"+{days} d"
    if hours:
        return f"+{hours} h {minutes} min" if minutes else f"+{hours} h"
    return f"+{minutes} min"


def utc(moment: datetime | None) -> str:
    """``moment`` as "2024-05-06 07:00 UTC" (the page's script shows it in the reader's zone)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def web_link(url: str | None) -> str | None:
    """``url`` if it is an http(s) link a page may point to, else None."""
    return url if url and urlsplit(url).scheme in ("http", "https") else None


@functools.cache
def templates() -> Jinja2Templates:
    """The pages' templates, loaded with Jinja2 on the first page served: a service whose browser
    is never opened does not import Jinja2 (about 2 MiB of its main process)."""
    import jinja2
    from fastapi.templating import Jinja2Templates

    loaded = Jinja2Templates(env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True,
    ))
    loaded.env.filters.update(age=age, after=after, utc=utc, web_link=web_link)
    return loaded


def render(request: Request, name: str, status_code: int = 200, headers: dict[str, str] | None = None, **context) -> HTMLResponse:
    """Template ``name`` with ``context``, the ``base`` path of the browser and whether a key is kept."""
    base = request.scope.get("root_path", "") + "/ui"
    context.update(base=base, auth=request.app.state.settings.auth, keyed=COOKIE in request.cookies)
    return templates().TemplateResponse(request, name, context, status_code=status_code, headers={**HEADERS, **(headers or {})})


def error_page(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The key form for 401 and 403 (what was asked for is opened after the key is accepted), else
    the error page."""
    if status in (401, 403):
        if COOKIE not in request.cookies and "authorization" not in request.headers:
            detail = "These pages show what the API shows, so they need what it needs: a key with the read scope."
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return render(request, "key.html", status, headers, detail=detail, next=target)
    return render(request, "error.html", status, headers, status=status, detail=detail)


class PageRoute(APIRoute):
    """A route whose errors (``Problem``, invalid parameters) are answered with a page, not JSON."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except _Redirect as exc:
                return RedirectResponse(exc.location, status_code=303, headers=HEADERS)
            except Problem as exc:
                return error_page(request, exc.problem_status, exc.detail, exc.headers)
            except RequestValidationError as exc:
                path = [e for e in exc.errors() if e.get("loc", ())[:1] == ("path",)]
                if path:  # /ui/articles/abc names no article: not found, not a filter to fix
                    name, value = path[0]["loc"][1], path[0].get("input")
                    noun = name.removesuffix("_id")
                    return error_page(request, 404, f"there is no {noun} {value}: {noun} ids are whole numbers from 1 to {MAX_ID}")
                detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}" for e in exc.errors())
                return error_page(request, 422, detail)

        return page_handler


class _Redirect(Exception):
    """Raised by a dependency to send the browser to ``location`` (303) before the route runs."""

    def __init__(self, location: str) -> None:
        self.location = location


async def authorize_page(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Let the page through with a read key: ``Authorization: Bearer`` or the key form's cookie."""
    key = request.cookies.get(COOKIE)
    if credentials is None and key:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=key)
    await check_key(request, credentials, "read")


async def drop_blank_filters(request: Request) -> None:
    """Send a filter form's URL on without its blank fields (``?lang=&q=bridge`` → ``?q=bridge``),
    so the list takes exactly the API's parameters, with or without script."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if v.strip()]
    if len(kept) < len(request.query_params.multi_items()):
        raise _Redirect(request.url.path + (f"?{urlencode(kept)}" if kept else ""))


router = APIRouter(route_class=PageRoute, include_in_schema=False)
pages = [Depends(authorize_page)]


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    """The service's front page is the story browser."""
    return RedirectResponse(request.scope.get("root_path", "") + "/ui/", status_code=307)


@router.get("/ui/", dependencies=[Depends(drop_blank_filters), *pages])
async def story_list(
    request: Request, reader: ReaderDep, cursor: CursorParam = None, limit: LimitParam = PAGE_SIZE, lang: LangParam = None,
    outlet: OutletParam = None, min_outlets: MinOutletsParam = None, min_languages: MinLanguagesParam = None,
    q: SearchParam = None,
) -> Response:
    """Stories, newest activity first (by relevance with ``q``), ``limit`` a page, with the API's
    filters; the pager's links carry the API's ``next_cursor``."""
    given = dict(lang=lang, outlet=outlet, min_outlets=min_outlets, min_languages=min_languages, q=q)
    filters = {name: value for name, value in given.items() if value is not None}
    page = await list_stories(reader, cursor=cursor, limit=limit, since=None, lang=lang, outlet=outlet, min_outlets=min_outlets,
                              min_languages=min_languages, q=q)
    kept = {**filters, **({"limit": limit} if limit != PAGE_SIZE else {})}
    older = f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
    first = f"?{urlencode(kept)}" if cursor else None
    return render(request, "stories.html", stories=page.items, filters=filters, older=older, first=first,
                  now=datetime.now(UTC))


@router.get("/ui/stories/{story_id}", dependencies=pages)
async def story_page(request: Request, story_id: Annotated[int, Path(ge=1, le=MAX_ID)], reader: ReaderDep) -> Response:
    """One story: its timeline by outlet, who cites whom, and its articles with their summaries."""
    story, rows = await reader.run(read_story, story_id)
    return render(request, "story.html", story=story, rows=rows, timeline=lay_out(story), now=datetime.now(UTC))


@router.get("/ui/articles/{article_id}", dependencies=pages)
async def article_page(request: Request, article_id: Annotated[int, Path(ge=1, le=MAX_ID)], reader: ReaderDep) -> Response:
    """One article's stored text, with its source and story."""
    return render(request, "article.html", article=await get_article(article_id, reader))


@router.get("/ui/articles/{article_id}/text", dependencies=pages)
async def article_text(request: Request, article_id: Annotated[int, Path(ge=1, le=MAX_ID)], reader: ReaderDep) -> Response:
    """One article's stored text as an HTML fragment (the story page opens it in place)."""
    return render(request, "text.html", article=await get_article(article_id, reader))


@router.post("/ui/key")
async def keep_key(request: Request) -> Response:
    """Check the key form's ``key`` (read scope) and keep it in the cookie, then open ``next`` (a
    path under /ui); a refused key shows the form again with the reason."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    key = (form.get("key") or [""])[0].strip()
    target = (form.get("next") or [""])[0]
    parts = urlsplit(target)
    base = request.scope.get("root_path", "") + "/ui/"
    if parts.scheme or parts.netloc or not parts.path.startswith(base) or "\\" in target:
        target = base  # only a page of this browser: never a redirect elsewhere
    try:
        await check_key(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=key) if key else None, "read")
    except Problem as exc:
        return render(request, "key.html", exc.problem_status, exc.headers, detail=exc.detail, next=target)
    response = RedirectResponse(target, status_code=303, headers=HEADERS)
    response.set_cookie(COOKIE, key, path=base.rstrip("/"), httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


@router.post("/ui/key/forget")
async def forget_key(request: Request) -> Response:
    """Drop the kept key; back to the list (which asks for a key again)."""
    base = request.scope.get("root_path", "") + "/ui"
    response = RedirectResponse(base + "/", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path=base, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


@router.get("/ui/{rest:path}", dependencies=pages)
async def not_found(rest: str) -> Response:
    """Any other path under /ui: the not-found page (after the key check, so it tells nothing)."""
    raise Problem(404, f"there is no page /ui/{rest}")
