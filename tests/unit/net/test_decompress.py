"""``service.net.decompress``: gzip, deflate and br decoded under a cap, bombs stopped while decoding."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from service.net.decompress import BoundedDecoder, DecodingFailed

TEXT = b"<rss><channel><title>Bounded</title></channel></rss>\n" * 200
BOMB = 16 * 1024 * 1024  # 16 MiB of zeros: about 16 KB gzipped, a few dozen bytes with brotli


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODED = {
    "gzip": gzip.compress(TEXT),
    "x-gzip": gzip.compress(TEXT),
    "deflate": zlib.compress(TEXT),  # RFC 9110: zlib-wrapped
    "br": brotli.compress(TEXT),
    "identity": TEXT,
}


def decode_all(decoder: BoundedDecoder, body: bytes, limit: int, chunk: int) -> bytes:
    out = b"".join(decoder.decode(body[i:i + chunk], limit) for i in range(0, len(body), chunk))
    return out + decoder.flush(limit)


@pytest.mark.parametrize("encoding", sorted(ENCODED))
@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_round_trip_in_any_chunking(encoding: str, chunk: int) -> None:
    assert decode_all(BoundedDecoder(encoding), ENCODED[encoding], 1_000_000, chunk) == TEXT


def test_deflate_sent_as_raw_deflate_is_read() -> None:
    """Servers often send RFC 1951 raw deflate for ``Content-Encoding: deflate``."""
    assert decode_all(BoundedDecoder("deflate"), raw_deflate(TEXT), 1_000_000, 5) == TEXT


@pytest.mark.parametrize("content_encoding", [None, "", "identity", " GZIP ", "gzip, br"])
def test_encoding_names_and_lists(content_encoding: str | None) -> None:
    """Names are case-insensitive; a list is applied in order, so decoded last-first."""
    body = {"gzip, br": brotli.compress(gzip.compress(TEXT)), " GZIP ": gzip.compress(TEXT)}.get(content_encoding, TEXT)
    assert decode_all(BoundedDecoder(content_encoding), body, 1_000_000, 1000) == TEXT


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(DecodingFailed, match="unsupported Content-Encoding 'compress'"):
        BoundedDecoder("gzip, compress")


@pytest.mark.parametrize(("encoding", "bomb"), [
    ("gzip", gzip.compress(bytes(BOMB))),
    ("deflate", zlib.compress(bytes(BOMB), 9)),
    ("deflate", raw_deflate(bytes(BOMB))),
    ("br", brotli.compress(bytes(BOMB))),
], ids=["gzip", "deflate", "raw-deflate", "br"])
@pytest.mark.parametrize("limit", [0, 1000, 100_000])
def test_bomb_stops_one_byte_past_the_cap(encoding: str, bomb: bytes, limit: int) -> None:
    """One network chunk never yields more than ``limit + 1`` bytes, so the caller sees the cap passed
    without holding the whole bomb (brotli's own output limit is only a hint)."""
    out = BoundedDecoder(encoding).decode(bomb[:65536], limit)
    assert len(out) == limit + 1
    assert out == bytes(limit + 1)


def test_cap_is_enforced_at_every_step_of_a_chain() -> None:
    body = brotli.compress(gzip.compress(bytes(BOMB)))
    assert len(BoundedDecoder("gzip, br").decode(body, 4096)) == 4097


@pytest.mark.parametrize(("encoding", "garbage"), [
    ("gzip", b"this is not gzip at all"),
    ("deflate", b"\xff\xff\xff not deflate either"),
    ("br", b"\xff\xff\xff\xff not brotli"),
], ids=["gzip", "deflate", "br"])
def test_invalid_data_raises_decoding_failed(encoding: str, garbage: bytes) -> None:
    with pytest.raises(DecodingFailed):
        decode_all(BoundedDecoder(encoding), garbage, 1_000_000, 1000)


def test_corrupted_gzip_body_raises() -> None:
    body = bytearray(ENCODED["gzip"])
    body[len(body) // 2] ^= 0xFF
    with pytest.raises(DecodingFailed):
        decode_all(BoundedDecoder("gzip"), bytes(body), 1_000_000, 1000)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_truncated_stream_gives_a_prefix_without_raising(encoding: str) -> None:
    """A body cut short (framing complete, compressed stream not) yields what was decodable, like
    browsers and httpx do; the feed parser recovers from the cut document."""
    varied = b"".join(b"<item><guid>%d</guid></item>\n" % n for n in range(5000))
    body = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[encoding](varied)
    out = decode_all(BoundedDecoder(encoding), body[: len(body) // 2], 10_000_000, 4096)
    assert 0 < len(out) < len(varied)
    assert varied.startswith(out)


def test_data_after_the_gzip_end_is_ignored() -> None:
    assert decode_all(BoundedDecoder("gzip"), ENCODED["gzip"] + b"\0\0trailing", 1_000_000, 100) == TEXT
