"""Layers 2 and 3 of dedup: the same text (syndicated wire copies) and nearly the same text
(lightly edited copies), both recorded as ``duplicate_of`` the first copy seen.

- Exact: ``service.ingest.pages.extractor.content_hash`` (SHA-256 of the lower-cased, whitespace-collapsed
  text), computed at extraction and indexed on ``articles.content_hash``.
- Near: MinHash (Broder, 1997, "On the resemblance and containment of documents") over word
  3-shingles (``minhash_signature``: the scheme of ``datasketch`` 2's ``MinHash``, in numpy), and
  locality-sensitive hashing by banding (Leskovec, Rajaraman and
  Ullman, "Mining of Massive Datasets", ch. 3): ``BANDS`` bands of ``ROWS`` rows. Two texts whose
  shingle sets have Jaccard similarity ``s`` share a band key with probability
  ``1 - (1 - s**ROWS)**BANDS``: 0.97 at s = 0.7, 0.05 at s = 0.3. Band keys are stored in the
  ``article_bands`` table, so candidates come from an index lookup, not a scan. SimHash (Charikar,
  2002) would give a 64-bit signature instead, but it needs a Hamming-distance search that SQL
  indexes do not offer.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np

from service.ingest.pages.extracted import content_hash

__all__ = ["BANDS", "NEAR_DUPLICATE_JACCARD", "ROWS", "band_keys", "content_hash", "jaccard", "minhash_signature"]

BANDS = 20
ROWS = 5
NUM_PERM = BANDS * ROWS
SHINGLE = 3
# Texts shorter than this (in words) get no signature: short feed summaries are too alike by chance.
MIN_WORDS = 20
# Estimated Jaccard similarity of word 3-shingles from which a text counts as a near-duplicate.
NEAR_DUPLICATE_JACCARD = 0.7

_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, size: int = SHINGLE) -> set[bytes]:
    """The set of ``size``-word shingles of ``text`` (lower-cased words), UTF-8 encoded."""
    words = [word.encode() for word in _WORD.findall(text.lower())]  # each word encoded once, not in each of its shingles
    if len(words) < size:
        return {b" ".join(words)} if words else set()
    return set(map(b" ".join, zip(*(words[i:] for i in range(size)), strict=False)))  # the shorter tails end it


def minhash_signature(text: str) -> list[int]:
    """MinHash signature of ``text``'s word 3-shingles: ``NUM_PERM`` (100) unsigned 32-bit ints,
    each the least of one permutation of the shingles' hashes (``_permutations``); ``2**32 - 1``
    each for a text without words. Seeded, so signatures from different processes and runs
    compare.

    The values are those of ``datasketch.MinHash(num_perm=100, seed=1)`` (2.0, its default
    "affine32" scheme; the signatures stored before were made by it): each shingle's hash is the
    first 4 bytes of its SHA-1 (little-endian), mixed by the MurmurHash3 32-bit finalizer, and
    permutation k maps it to ``a_k * h + b_k`` modulo 2**32 (``a_k`` odd: a bijection). Computed
    here rather than by datasketch, whose package imports scipy: 0.4 s of CPU and 43 MiB in each
    worker process that computed a signature, for these lines."""
    hashes = b"".join([hashlib.sha1(shingle).digest()[:4] for shingle in shingles(text)])
    if not hashes:
        return [_MAX_HASH] * NUM_PERM
    h = np.frombuffer(hashes, dtype="<u4").astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    a, b = _permutations()
    return (h[:, None] * a + b).min(axis=0).tolist()


_MAX_HASH = (1 << 32) - 1


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """The ``NUM_PERM`` permutations (a, b) of ``minhash_signature``, uint32 arrays (NUM_PERM,):
    ``a`` odd and ``b`` uniform below 2**32, drawn by ``numpy.random.RandomState(1)`` in
    datasketch's order."""
    generator = np.random.RandomState(1)
    a = generator.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    return a, generator.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)


def band_keys(signature: list[int]) -> list[str]:
    """The ``BANDS`` LSH keys of ``signature``: ``"<band>:<16 hex digits>"``; empty for an empty
    signature."""
    if not signature:
        return []
    keys = []
    for band in range(BANDS):
        rows = np.asarray(signature[band * ROWS : (band + 1) * ROWS], dtype=np.uint64).tobytes()
        keys.append(f"{band}:{hashlib.blake2b(rows, digest_size=8).hexdigest()}")
    return keys


def jaccard(a: list[int], b: list[int]) -> float:
    """Estimated Jaccard similarity (0..1) of the shingle sets behind two signatures: the share of
    equal positions. 0.0 when either is empty or their lengths differ."""
    if not a or len(a) != len(b):
        return 0.0
    return float(np.mean(np.asarray(a, dtype=np.uint64) == np.asarray(b, dtype=np.uint64)))
