"""Language identification of article text.

Library: py3langid (https://github.com/adbar/py3langid), a maintained fork of langid.py (Lui &
Baldwin, "langid.py: An Off-the-shelf Language Identification Tool", ACL 2012): a naive Bayes
model over byte n-grams, 97 languages, ISO 639-1 codes. Cost: the model (~2 MB, bundled) loads
once per worker process (~0.3 s); classifying one article takes about a millisecond, so it adds
little to trafilatura's time. We chose it over lingua (more accurate on very short text, but a
~100 MB model) and fastText (needs a separate model download) for its size and speed; short or
ambiguous text is not trusted anyway (see ``MIN_WORDS`` and ``MIN_CONFIDENCE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# Below this many words the text is not classified: "Change in Boardroom" gives confident nonsense.
MIN_WORDS = 8
# Normalised probability the best language needs before it is trusted over the page's declared one.
MIN_CONFIDENCE = 0.9
# Characters of text classified; the beginning of an article identifies its language (600 gave the
# same decisions as 1000 on all 240 corpus pages at two thirds of the cost).
MAX_CHARS = 600


@dataclass(frozen=True)
class LanguageGuess:
    """An ISO 639-1 ``code`` and the identifier's normalised probability ``confidence`` in [0, 1]
    (None when the code was declared by the page or feed, not identified)."""

    code: str
    confidence: float | None


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def identify(text: str) -> LanguageGuess | None:
    """The language of ``text``, or None when it has fewer than ``MIN_WORDS`` words or the best
    guess is below ``MIN_CONFIDENCE``."""
    if len(text.split()) < MIN_WORDS:
        return None
    code, probability = _identifier().classify(text[:MAX_CHARS])
    if probability < MIN_CONFIDENCE:
        return None
    return LanguageGuess(code, round(float(probability), 4))


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
