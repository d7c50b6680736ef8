"""API keys: storing a key's digest, listing, revoking, and finding the key a request presents
(``service.auth`` makes and hashes keys; only the SHA-256 digest is stored)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import ApiKey, ApiKeyScope, utcnow


async def add(session: AsyncSession, prefix: str, key_hash: str, scope: ApiKeyScope, name: str | None) -> ApiKey:
    """Store a key: its first characters (``prefix``, shown in listings), the hex SHA-256
    ``key_hash``, ``scope`` and an optional ``name``. Commits; returns the row with its id.
    Raises ``sqlalchemy.exc.IntegrityError`` when the digest is stored already."""
    row = ApiKey(prefix=prefix, key_hash=key_hash, scope=scope, name=name)
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return row


async def every(session: AsyncSession) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list((await session.exec(select(ApiKey).order_by(col(ApiKey.id)))).all())


async def revoke(session: AsyncSession, key_id: int) -> ApiKey | None:
    """Mark key ``key_id`` revoked now (kept; a key revoked before keeps its time). Commits when
    it changes. Returns the row, or None when there is no such key."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.commit()
    return row


async def by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The key stored under the hex SHA-256 ``key_hash`` (revoked or not), or None. One indexed look-up."""
    return (await session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash))).first()


async def mark_used(session: AsyncSession, row: ApiKey, now: datetime) -> None:
    """Set the key's ``last_used_at`` to ``now`` (UTC) and commit."""
    row.last_used_at = now
    await session.commit()
