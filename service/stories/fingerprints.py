"""Layers 2 and 3 of dedup: the same text (syndicated wire copies) and nearly the same text
(lightly edited copies), both recorded as ``duplicate_of`` the first copy seen.

- Exact: ``service.ingest.pages.extractor.content_hash`` (SHA-256 of the lower-cased, whitespace-collapsed
  text), computed at extraction and indexed on ``articles.content_hash``.
- Near: MinHash (Broder, 1997, "On the resemblance and containment of documents") over word
  3-shingles with ``datasketch``, and locality-sensitive hashing by banding (Leskovec, Rajaraman and
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

import numpy as np

from service.ingest.pages.extracted import content_hash

__all__ = ["BANDS", "ROWS", "NEAR_DUPLICATE_JACCARD", "content_hash", "minhash_signature", "band_keys", "jaccard"]

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
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def minhash_signature(text: str) -> list[int]:
    """MinHash signature of ``text``'s word 3-shingles: ``NUM_PERM`` (100) unsigned 32-bit ints.
    Seeded, so signatures from different processes and runs compare. Runs in the worker processes;
    datasketch (with scipy, 43 MiB) is imported here so that the main process, which reads
    signatures but never computes one, does not load it."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=NUM_PERM, seed=1)
    minhash.update_batch(list(shingles(text)))
    return [int(v) for v in minhash.hashvalues]


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
