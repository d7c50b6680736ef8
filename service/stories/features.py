"""What the clusterer knows about one article: its vectors, its terms and its named things.

``article_features`` is the one CPU-heavy call of story linking (encoding, MinHash, attribution
patterns); the linker runs it in a worker process. Everything it returns is picklable.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import numpy as np

from service.ingest.text import word_count
from service.stories import attribution, fingerprints, names
from service.stories.figures import Figure, figures
from service.stories.representation import (
    LEAD_CHARS,
    TEXT_CHARS,
    TEXT_VECTOR_CHARS,
    Encoder,
    UseEncoder,
    centering,
    default_encoder,
    encode_centered,
    fix_case,
    representation_text,
    text_encoder,
)

# Body words from which an article counts as having text (not just a headline or a teaser).
MIN_TEXT_WORDS = 30

# Words taken as the headline of a text given without a title (SemEval's "xlmr" texts run the
# headline into the body; in the service the title is its own field).
HEADLINE_WORDS = 12
OFF_HEADLINE = 0.066
"""USE cosine of an article's headline and its body's lead below which the body is taken to be
about something else (``on_headline``): the median cosine of a headline with the body of another
article of its language, over the 1,338 SemEval-2022 Task 8 training articles with a body (20
random others each; no label read; ``python bench/stories_centering.py --off-headline`` prints
it). A body under it is no closer to its headline than half of the unrelated bodies are: on
those articles it picks out IP-block notices, cookie and consent pages, paywalls, login forms,
donation and ad-blocker banners and portal front pages (36 articles; docs/benchmarks.md, "Branch
quality (2026-12-02, fifth session)")."""

_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+"
)
"""A run of characters of scripts written without spaces between words: Thai, Lao, Myanmar, Khmer,
Hiragana, Katakana and Han (Chinese characters, Japanese kanji)."""


def terms(text: str, lang: str | None) -> Counter[str]:
    """Term counts of ``text``: folded words of two or more characters, stopwords of ``lang`` and of
    English removed (headlines mix them). A run of a script written without spaces (``UNSPACED``)
    is not one word but gives its overlapping character bigrams (a lone character: itself), as
    Lucene's CJK analyzer does: without a dictionary, the bigrams hold most two-character words
    and let two texts that share words share terms, where the whole run ("此主题相关图片如下",
    a forum's boilerplate) would be one "word" only copies of the same sentence share."""
    stop = names.function_words(lang)
    runs = UNSPACED.findall(text)
    out = Counter(run[i : i + 2] for run in runs for i in range(max(1, len(run) - 1)))
    words = (names.fold(w) for w in _WORD.findall(UNSPACED.sub(" ", text) if runs else text))
    out.update(w for w in words if len(w) > 1 and w not in stop)
    return out


def entities(text: str, lang: str | None = None) -> frozenset[str]:
    """Named things and numbers as language-independent keys (``names.named_things``): "Peking"
    and "Beijing", "Vereinte Nationen" and "UN" meet; numbers meet across separators
    ("12.000"/"12,000"); German nouns are not taken for names."""
    return names.named_things(text, lang)


@dataclass
class ArticleFeatures:
    """Features of one article. ``vector``: float32 (dimension,), unit length, the encoding of
    title + lead (``representation_text``) by the default encoder; ``text_vector``: float32
    (text encoder's dimension,), unit length, the text encoder's encoding of title + body up to
    ``TEXT_VECTOR_CHARS`` characters, None without body text or without a text encoder
    (``representation.text_encoder``); ``chars``: characters of title + body, at most
    ``TEXT_CHARS``;
    ``terms``: folded term counts of title + lead; ``entities``: see ``entities``; ``published``:
    POSIX seconds or None; ``minhash``: MinHash signature of the whole text (``fingerprints``),
    empty without text; ``bands``: its LSH band keys; ``cites``: outlet names the text attributes
    reports to; ``has_text``: whether a body of at least ``MIN_TEXT_WORDS`` words backs the title."""

    vector: np.ndarray
    lang: str | None
    terms: Counter[str]
    entities: frozenset[str]
    published: float | None = None
    minhash: list[int] = field(default_factory=list)
    bands: list[str] = field(default_factory=list)
    cites: list[str] = field(default_factory=list)
    has_text: bool = False
    text_vector: np.ndarray | None = None
    chars: int = 0
    figures: tuple[Figure, ...] = ()
    """The figures the title and lead state (``figures.figures``): (value, unit) pairs, read
    against a story's to tell another event of the same topic."""
    lang_confidence: float | None = None
    """The language identifier's probability when ``lang`` was identified from the text by
    ``linker.link_features``, not given."""


_DEFAULT = object()


def encode_articles(
    items: list[tuple[str | None, str | None]],
    encoder: Encoder | None = None,
    texts: Encoder | object | None = _DEFAULT,
    langs: list[str | None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """``items``: n (title, text) in ``langs`` (n ISO 639-1 codes or None; default all None) →
    (title + lead vectors: float32 array (n, dimension) of unit rows; text vectors: n unit float32
    arrays or None), see ``ArticleFeatures``; centered per language where ``centering.json`` has
    means for the encoder (the text encoder's; ``representation.LanguageCentering``). An article
    without body text (fewer than ``MIN_TEXT_WORDS`` words) gets no text vector: on headlines the
    text signal added nothing to story clustering (UCI dev slice, docs/benchmarks.md) and costs
    about 20 ms each. ``encoder`` defaults to ``default_encoder()``, ``texts`` (the text encoder)
    to ``text_encoder()``; None means no text vectors."""
    encoder = encoder or default_encoder()
    langs = langs if langs is not None else [None] * len(items)
    leads = encode_centered(encoder, [representation_text(title, text) for title, text in items], langs)
    return leads, _text_vectors(items, texts, langs)


def screened_articles(
    items: list[tuple[str | None, str | None]],
    encoder: Encoder | None = None,
    texts: Encoder | object | None = _DEFAULT,
    langs: list[str | None] | None = None,
) -> tuple[list[tuple[str | None, str | None]], np.ndarray, list[np.ndarray | None]]:
    """``on_headline`` then ``encode_articles`` of ``items`` (n (title, text) in ``langs``), with the
    title + lead encodings made in the same encoder call as ``on_headline``'s (one call of up to
    3n texts instead of two: about 2 ms less CPU per article with a body, 25 % of its USE time).
    Returns (``on_headline``'s items, title + lead vectors (n, dimension), text vectors), the
    vectors of the items returned: an article whose body is left out (rare: a wall, a notice) is
    encoded again from its headline alone."""
    encoder = encoder or default_encoder()
    langs = langs if langs is not None else [None] * len(items)
    reps = [representation_text(title, text) for title, text in items]
    kept, vectors = _screen(items, encoder, reps)
    redo = [i for i, (item, screened) in enumerate(zip(items, kept, strict=True)) if screened is not item]
    if redo:
        vectors[redo] = encoder.encode([representation_text(*kept[i]) for i in redo])
    shift = centering(encoder.name)
    leads = shift.center(vectors, langs) if shift is not None else vectors
    return kept, leads, _text_vectors(kept, texts, langs)


def _text_vectors(
    items: list[tuple[str | None, str | None]], texts: Encoder | object | None, langs: list[str | None]
) -> list[np.ndarray | None]:
    """The text vectors of ``encode_articles``: one per item, None without body text or text
    encoder (``texts``: an encoder, None, or ``_DEFAULT`` for ``text_encoder()``)."""
    texts = text_encoder() if texts is _DEFAULT else cast("Encoder | None", texts)
    out: list[np.ndarray | None] = [None] * len(items)
    bodied = [i for i, (_title, text) in enumerate(items) if has_body(text)]
    if texts is not None and bodied:
        vectors = encode_centered(
            texts, [representation_text(items[i][0], items[i][1], TEXT_VECTOR_CHARS) for i in bodied], [langs[i] for i in bodied]
        )
        for i, vector in zip(bodied, vectors, strict=True):
            out[i] = vector
    return out


def text_vector(title: str | None, text: str | None, lang: str | None = None, from_row: bool = False) -> np.ndarray | None:
    """The text vector alone (see ``ArticleFeatures.text_vector``; ``lang``: ISO 639-1 or None),
    for the linker's cascade, which computes it only where it can change the decision: None
    without body text or text encoder. ``from_row``: ``title`` and ``text`` are the article's
    stored ones (a story member's vector backfilled), not yet through ``on_headline``, which is
    applied first as ``article_features`` does at ingest, so that a body not about its headline
    gives no text vector here either (about 10 ms more of CPU for such an article). Without it the
    caller passes an article whose features kept its body (``ArticleFeatures.has_text``)."""
    encoder = text_encoder()
    if encoder is None or not has_body(text):
        return None
    if from_row:
        ((title, text),) = on_headline([(title, text)])
        if not has_body(text):
            return None
    return encode_centered(encoder, [representation_text(title, text, TEXT_VECTOR_CHARS)], [lang])[0]


def headline_and_body(title: str | None, text: str) -> tuple[str, str]:
    """(headline, body) of an article: ``title`` and ``text`` without a leading copy of it; without
    a title, the first ``HEADLINE_WORDS`` words of ``text`` and the rest."""
    if title and title.strip():
        head = " ".join(title.split())
        body = " ".join(text.split())
        return head, body[len(head):].lstrip() if body.startswith(head) else body
    words = text.split()
    return " ".join(words[:HEADLINE_WORDS]), " ".join(words[HEADLINE_WORDS:])


def on_headline(items: list[tuple[str | None, str | None]], encoder: Encoder | None = None) -> list[tuple[str | None, str | None]]:
    """``items`` (n (title, text)) with each body that is not about its headline replaced by the
    headline alone: (headline, None) where the USE cosine of the headline and the body's first
    ``LEAD_CHARS`` characters is under ``OFF_HEADLINE``. Such a text is a wall, a notice or a
    page around the article rather than the article (an IP block, a cookie dialog or a paywall in
    any language, which ``ingest.pages.walls`` may not know), and would make the text, names and
    words signals compare the page instead of the story; the headline still says what the story
    is. Texts without a body (``has_body``) are kept as they are. ``encoder``: the title + lead
    encoder (default ``default_encoder()``); the floor is USE's, so with another encoder nothing
    is replaced. Cost: USE encodings of the headline and the body's lead, about 10 ms of CPU per
    article with a body (the title + lead vector itself costs about 8 ms)."""
    return _screen(items, encoder or default_encoder(), [])[0]


def _screen(
    items: list[tuple[str | None, str | None]], encoder: Encoder, also: list[str]
) -> tuple[list[tuple[str | None, str | None]], np.ndarray]:
    """``on_headline(items, encoder)``, with the texts ``also`` encoded in the same encoder call:
    (the items, a replaced one as a new tuple; ``encoder.encode(also)``, not centered)."""
    bodied = [i for i, (_title, text) in enumerate(items) if has_body(text)] if encoder.name == UseEncoder.name else []
    parts = [headline_and_body(items[i][0], cast(str, items[i][1])) for i in bodied]
    vectors = encoder.encode(also + [fix_case(head) for head, _body in parts] + [body[:LEAD_CHARS] for _head, body in parts])  # one call: cheaper
    heads, bodies = vectors[len(also) : len(also) + len(parts)], vectors[len(also) + len(parts) :]
    out = list(items)
    for i, (head, _body), cosine in zip(bodied, parts, np.einsum("ij,ij->i", heads, bodies), strict=True):
        if float(cosine) < OFF_HEADLINE:
            out[i] = (head, None)
    return out, vectors[: len(also)]


def has_body(text: str | None) -> bool:
    """Whether ``text`` is a body of at least ``MIN_TEXT_WORDS`` words (``text.word_count``: each
    Chinese character or kana is one), not just a teaser."""
    return bool(text and word_count(text) >= MIN_TEXT_WORDS)


def article_features(
    title: str | None,
    text: str | None,
    lang: str | None,
    published: datetime | None = None,
    *,
    encoder: Encoder | None = None,
    texts: Encoder | object | None = _DEFAULT,
    vector: np.ndarray | None = None,
    text_vector: np.ndarray | None = None,
    with_fingerprint: bool = True,
) -> ArticleFeatures:
    """Compute ``ArticleFeatures`` (CPU-bound: about 20-250 ms with the default encoders, most of
    it the text vector; run it in a worker). ``lang`` is an ISO 639-1 code or None (then only
    English stopwords are removed). ``encoder``, ``texts``: as in ``encode_articles``. A body not
    about its headline is left out (``on_headline``): the article is then its headline alone.
    ``vector``, ``text_vector``: the article's rows of ``encode_articles`` when the caller batched
    it, on ``on_headline``'s (title, text), which it passes here (``screened_articles``)."""
    if vector is None:
        ((title, text),), leads, text_vectors = screened_articles([(title, text)], encoder, texts, [lang])
        vector, text_vector = leads[0], text_vectors[0]
    rep = representation_text(title, text)
    lead = f"{fix_case(title or '')}\n{text or ''}"[:2000]
    signature: list[int] = []
    bands: list[str] = []
    if with_fingerprint and text and len(text.split()) >= fingerprints.MIN_WORDS:
        signature = fingerprints.minhash_signature(text)
        bands = fingerprints.band_keys(signature)
    return ArticleFeatures(
        vector=vector,
        lang=lang,
        terms=terms(rep, lang),
        entities=entities(lead, lang),
        figures=figures(lead),
        published=published.timestamp() if published else None,
        minhash=signature,
        bands=bands,
        cites=attribution.cited_names(text or "") if text else [],
        has_text=has_body(text),
        text_vector=text_vector,
        chars=len(representation_text(title, text, TEXT_CHARS)),
    )
