"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec "Signature scheme").

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,`` + base64(HMAC-SHA256(key, content)), where the key is the base64-decoded part of a
``whsec_…`` secret. Several signatures (during a secret rotation) are separated by spaces.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
# 24 random bytes (192 bits): Standard Webhooks asks for secrets of 24 to 64 bytes.
SECRET_BYTES = 24


def generate_secret() -> str:
    """A new random ``whsec_<base64>`` secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 signature>`` of ``body`` sent as ``message_id`` at ``timestamp`` (Unix seconds).

    Raises ``ValueError`` for a secret that is not ``whsec_`` followed by base64.
    """
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()


@functools.lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret, decoded once per secret (the delivery worker signs
    every attempt with its subscription's). Raises ``ValueError`` as ``sign`` says (not cached)."""
    if not secret.startswith(PREFIX):
        raise ValueError("webhook secrets start with whsec_")
    return base64.b64decode(secret[len(PREFIX):], validate=True)


def headers(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, with one signature per secret (current first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets_),
    }
