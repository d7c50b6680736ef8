"""API key authentication (RFC 6750 bearer tokens) and per-key rate limits, as FastAPI
dependencies added to routers in ``service.api.app``.

``authorize`` needs the ``read`` scope for safe methods (GET, HEAD, OPTIONS) and ``admin`` for
everything else; ``authorize_read`` always needs ``read`` (``/metrics``). With
``NEWSLOOM_AUTH=off`` both let every request through, unlimited. ``sees_credentials`` tells routes
whether to show the passwords in stored URLs.

Answers: 401 with ``WWW-Authenticate: Bearer realm="newsloom"`` (plus ``error="invalid_token"`` for
an unknown or revoked key) when no valid key is sent; 403 with ``error="insufficient_scope"`` when
the key's scope is too small (RFC 6750 §3.1); 429 with ``Retry-After`` in seconds (RFC 9110
§10.2.3, RFC 6585 §4) when the key's bucket is empty.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.problems import Problem
from service.auth import RateLimiter, find_key, scope_allows
from service.models import ApiKeyScope

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `newsloom keys create --scope read|admin`, as `Authorization: Bearer nlk_…`.",
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Bearer realm="newsloom"'


async def check_key(request: Request, credentials: HTTPAuthorizationCredentials | None, needed: str) -> None:
    """Let the request through if auth is off, or if ``credentials`` hold a known key with scope
    ``needed`` ("read" or "admin") within its rate limit (then ``request.state`` gets the key's id
    and scope); else raise the 401/403/429 ``Problem``. The story browser (``service.ui``) calls it
    with the key from its cookie."""
    settings = request.app.state.settings
    if not settings.auth:
        return
    if credentials is None:
        raise Problem(401, "this endpoint needs an API key: send Authorization: Bearer <key>",
                      headers={"WWW-Authenticate": REALM})
    async with request.app.state.sessions() as session:
        key = await find_key(session, credentials.credentials)
    if key is None:
        raise Problem(401, "the API key is unknown or revoked",
                      headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
    if not scope_allows(key.scope, needed):
        raise Problem(403, f"this request needs a key with the {needed} scope; this key has {key.scope}",
                      headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed}"'})
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.acquire(key.id)
    if wait > 0:
        raise Problem(429, f"rate limit of this key exceeded ({settings.rate_limit:g} requests/s, burst "
                      f"{settings.rate_burst})", headers={"Retry-After": RateLimiter.retry_after(wait)})
    request.state.api_key_id = key.id
    request.state.api_key_scope = key.scope


def sees_credentials(request: Request) -> bool:
    """Whether this request may read the credentials in stored URLs (``user:password@`` in a feed
    or webhook URL): with an ``admin`` key, or with authentication off. A ``read`` key sees them
    as ``***`` (``service.net.urls.redact_password``)."""
    if not request.app.state.settings.auth:
        return True
    return getattr(request.state, "api_key_scope", None) == ApiKeyScope.admin


async def authorize(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Let the request through if its key may use its method (``read`` for safe methods, else
    ``admin``) and the key's rate limit allows it; else raise the 401/403/429 problem."""
    await check_key(request, credentials, "read" if request.method in SAFE_METHODS else "admin")


async def authorize_read(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Like ``authorize`` but needs only ``read`` whatever the method."""
    await check_key(request, credentials, "read")
