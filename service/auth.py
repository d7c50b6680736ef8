"""API keys and per-key rate limits.

A key is ``nlk_`` followed by 43 base64url characters: 32 bytes (256 bits) from ``secrets``. Only
its SHA-256 digest is stored. A fast hash is enough here, unlike for passwords: slow hashes
(bcrypt, scrypt, Argon2) exist to make guessing *low-entropy* secrets expensive after a database
leak, but guessing a 256-bit random key is infeasible at any hash speed, so a leaked digest reveals
nothing usable. A fast, unsalted digest also lets a request find its key with one indexed lookup.

Keys are sent as bearer tokens (RFC 6750 §2.1: ``Authorization: Bearer <key>``). Scopes: ``read``
(safe methods and ``/metrics``) and ``admin`` (everything; implies ``read``).

The rate limiter is a token bucket per key, held in the memory of one process: with N replicas
behind a load balancer a key gets up to N times the configured rate.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import ApiKey, ApiKeyScope, utcnow
from service.storage import keys

KEY_PREFIX = "nlk_"
# How often (seconds) a key's last_used_at is written at most: one write per key per minute, not per request.
LAST_USED_RESOLUTION = 60


def generate_key() -> str:
    """A new random API key: ``nlk_`` + 43 base64url characters (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The hex SHA-256 digest (64 characters) under which ``key`` is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def scope_allows(granted: str, needed: str) -> bool:
    """Whether a key with scope ``granted`` may do what needs ``needed`` (``admin`` implies ``read``)."""
    return granted == ApiKeyScope.admin or granted == needed


async def create_key(session: AsyncSession, scope: ApiKeyScope | str, name: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key with ``scope``; return its row and the key itself (the only time it is
    available: only the digest is kept). Commits. Raises ``ValueError`` for an unknown scope."""
    key = generate_key()
    return await keys.add(session, key[:12], hash_key(key), ApiKeyScope(scope), name), key


async def find_key(session: AsyncSession, key: str) -> ApiKey | None:
    """The active (not revoked) key row for the presented ``key``, or None. Updates
    ``last_used_at`` at most once a minute per key (and commits then)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    row = await keys.by_hash(session, hash_key(key))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= LAST_USED_RESOLUTION:
        await keys.mark_used(session, row, now)
    return row


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by API key id: each holds up to ``burst`` requests and refills at
    ``rate`` requests per second. ``rate <= 0`` disables limiting. Per process (see the module
    docstring). Thread-safe."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[object, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: object) -> float:
        """Take one request from ``key``'s bucket. Returns 0.0 when allowed, else the seconds
        (> 0) until a request will be allowed again: the value for ``Retry-After``."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """``wait`` seconds as a ``Retry-After`` delay-seconds value (RFC 9110 §10.2.3: a
        non-negative integer), rounded up so a client that obeys it is let through."""
        return str(max(1, math.ceil(wait)))
