"""Bounded HTTP content decoding (RFC 9110 §8.4.1: gzip, deflate; RFC 7932: br).

httpx decodes a whole network chunk at once, so one 64 KiB chunk of a compression bomb can become
tens of megabytes (gzip) or gigabytes (brotli) before any size check runs. These decoders take a
``limit`` and never produce more than ``limit + 1`` bytes from one call, so the caller's cap is
enforced while decompressing, not after.
"""

from __future__ import annotations

import zlib

import brotli

from service.errors import DocumentError


class DecodingFailed(DocumentError):
    """The body is not valid data for its declared Content-Encoding, or the encoding is unknown."""


class _Identity:
    def decode(self, data: bytes, limit: int) -> bytes:
        return data

    def flush(self, limit: int) -> bytes:
        return b""


class _Zlib:
    """gzip (``wbits`` 16+15), zlib-wrapped deflate (15) or raw deflate (-15)."""

    def __init__(self, wbits: int, fallback_raw: bool = False) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._fallback_raw = fallback_raw
        self._started = False

    def decode(self, data: bytes, limit: int) -> bytes:
        out = bytearray()
        pending = data
        while pending and len(out) <= limit:
            try:
                out += self._obj.decompress(pending, limit + 1 - len(out))
            except zlib.error as exc:
                if self._fallback_raw and not self._started:  # "deflate" sent as raw deflate (RFC 1951)
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._fallback_raw = False
                    continue
                raise DecodingFailed(str(exc)) from exc
            self._started = True
            pending = self._obj.unconsumed_tail
            if self._obj.eof:
                break
        return bytes(out)

    def flush(self, limit: int) -> bytes:
        try:
            return self._obj.flush()[: limit + 1]
        except zlib.error as exc:
            raise DecodingFailed(str(exc)) from exc


class _Brotli:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            out = bytearray(self._obj.process(data, output_buffer_limit=limit + 1))
            while len(out) <= limit and not self._obj.can_accept_more_data():
                more = self._obj.process(b"", output_buffer_limit=limit + 1 - len(out))
                if not more:
                    break
                out += more
        except brotli.error as exc:
            raise DecodingFailed(str(exc)) from exc
        # brotli treats output_buffer_limit as a hint (about twice as much comes out, and at least
        # 32 KiB); cut to the contract, the caller stops once it sees more than ``limit``.
        return bytes(out[: limit + 1])

    def flush(self, limit: int) -> bytes:
        return b""


def _one(name: str):
    name = name.strip().lower()
    if name in ("", "identity"):
        return _Identity()
    if name in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, fallback_raw=True)
    if name == "br":
        return _Brotli()
    raise DecodingFailed(f"unsupported Content-Encoding {name!r}")


class BoundedDecoder:
    """Decodes a body sent with ``content_encoding`` (a comma-separated list, applied in order, so
    decoded in reverse). ``decode(chunk, limit)`` returns at most ``limit + 1`` bytes; a caller that
    sees more than ``limit`` knows the cap is passed and stops. Raises ``DecodingFailed``."""

    ACCEPT_ENCODING = "gzip, deflate, br"

    def __init__(self, content_encoding: str | None) -> None:
        names = [n for n in (content_encoding or "").split(",") if n.strip()]
        self._chain = [_one(n) for n in reversed(names)] or [_Identity()]

    def decode(self, chunk: bytes, limit: int) -> bytes:
        for decoder in self._chain:
            chunk = decoder.decode(chunk, limit)
            if len(chunk) > limit:
                return chunk
        return chunk

    def flush(self, limit: int) -> bytes:
        out = b""
        for decoder in self._chain:
            out = decoder.decode(out, limit) + decoder.flush(limit)
        return out
