"""Layer 5: who says whom reported it. Finds phrases that attribute a report to another outlet
("Bloomberg reported", "according to Reuters", "citing the Financial Times", "laut Spiegel",
"wie die Welt berichtete", "berichtete die Welt") and returns the names they cite.

Names are strings here; ``refers_to`` says whether one names an outlet (by its domain's label,
its pages' site names or its feeds' titles, in the spellings and abbreviations English papers use
for German outlets: "Sueddeutsche Zeitung", "SZ"), and ``linker`` resolves them to outlets and to
that outlet's article in the same story. A name that resolves to no outlet is kept
only if it is a well-known wire service (``AGENCIES``), so "according to Smith" is dropped.
"""

from __future__ import annotations

import re
import unicodedata

# Wire services and outlets cited often enough to keep even when we hold none of their articles.
AGENCIES = frozenset(
    "reuters ap associated press afp agence france-presse dpa bloomberg apa sid epd kna ansa efe xinhua tass "
    "interfax kyodo yonhap bbc cnn".split(" ")
) | {"associated press", "agence france-presse", "new york times", "wall street journal", "financial times"}

# The capital letters of the Latin script (Basic Latin to Latin Extended-B: "É" of "Les Échos",
# "Ø", "Ł" as well as the German umlauts), with which a word of a name begins.
_CAPITAL = "[" + "".join(chr(c) for c in range(ord("A"), 0x250) if chr(c).isupper() and chr(c).isalpha()) + "]"
# A name: up to five capitalised words, optionally joined by "of"/"de"/"&"; lower-case articles
# before it ("die Welt", "the Guardian") are not part of it.
_NAME = rf"(?P<name>(?:dpa|afp|epd|kna|sid|{_CAPITAL}[\w&'’\-]*)(?:[ \t]+(?:of[ \t]+|de[ \t]+|&[ \t]+)?(?:{_CAPITAL}[\w&'’\-]*)){{0,4}})"
_ART = r"(?:(?i:the|die|der|dem|den|das|des)\s+)?"
_MEDIA = r"(?:(?:German|British|US|U\.S\.|American|French|news|media|Russian|Chinese|business|financial)\s+)*(?:(?:news\s+)?(?:outlet|agency|newspaper|broadcaster|magazine|daily|paper|website|network|channel)\s+)?"
_DE_MEDIA = r"(?:(?:Nachrichtenagentur|Agentur|Zeitung|Tageszeitung|Magazin|Sender|Nachrichtenmagazin|Portal)\s+)?"

# Each pattern with the words one of which a text must hold for it to match, and whether they are
# looked for in the text folded as its ``(?i:…)`` part matches (``_folded``: lower-case) or as
# written. A text without one of them skips the pattern: the patterns that begin with a name are
# tried by the regular expression engine at every capitalised word, the others at every word
# boundary (together most of ``cited_names``' time, which then falls from about 0.75 to 0.2 ms a
# 5,300-character article).
PATTERNS: list[tuple[re.Pattern[str], tuple[str, ...], bool]] = [
    # English
    (re.compile(rf"(?i:\baccording\s+to\s+){_ART}{_MEDIA}{_NAME}"), ("according",), True),
    (re.compile(rf"(?i:\b(?:citing|cited\s+by|reported\s+by|told|quoted\s+by)\s+){_ART}{_MEDIA}{_NAME}"), ("citing", "cited", "reported", "told", "quoted"), True),
    (re.compile(rf"{_NAME}\s+(?:had\s+|has\s+|first\s+|earlier\s+|also\s+)?(?:reported|reports|said\s+in\s+a\s+report|wrote|broke\s+the\s+news)\b"),
     ("report", "wrote", "broke"), False),
    # German
    (re.compile(rf"(?i:\blaut\s+){_ART}{_DE_MEDIA}{_NAME}"), ("laut",), True),
    (re.compile(rf"(?i:\b(?:wie|was)\s+){_ART}{_DE_MEDIA}{_NAME}\s+(?:zuerst\s+|zuvor\s+|am\s+\w+\s+)?(?:berichtet|berichtete|meldet|meldete|schrieb|schreibt)\b"),
     ("berichtet", "meldet", "schrieb", "schreibt"), False),
    (re.compile(rf"(?i:\b(?:berichtet|berichtete|berichteten|meldet|meldete|schrieb|schreibt)\s+){_ART}{_DE_MEDIA}{_NAME}"),
     ("berichtet", "meldet", "schrieb", "schreibt"), True),
    (re.compile(rf"{_NAME}\s+(?:hatte\s+|hat\s+)?(?:berichtet|berichtete|gemeldet|meldete)\b"), ("berichtet", "meldet"), False),
    (re.compile(rf"(?i:\b(?:unter\s+Berufung\s+auf|zufolge\s+)\s*){_ART}{_DE_MEDIA}{_NAME}"), ("berufung", "zufolge"), True),
    (re.compile(rf"\b{_ART}{_DE_MEDIA}{_NAME}\s+zufolge\b"), ("zufolge",), False),
]

# Capitalised words that begin a sentence or are not names ("The", "It", "Police reported").
_NOT_NAMES = frozenset(
    "the it he she they we i this that police officials authorities experts sources media witnesses "
    "der die das er sie es wir ich man polizei medien behörden augenzeugen experten quellen".split()
)


def _clean(name: str) -> str | None:
    words = name.split()
    while words and words[0].lower() in _NOT_NAMES | {"german", "british", "media", "outlet"}:
        words = words[1:]
    cleaned = " ".join(words).strip(" .,;:'’\"")
    if not cleaned or cleaned.lower() in _NOT_NAMES or len(cleaned) < 2:
        return None
    return cleaned


def cited_names(text: str) -> list[str]:
    """Names that ``text`` attributes a report to, in order of first mention, without repeats.

    ``"German media outlet Welt reported … Bloomberg reported …"`` → ``["Welt", "Bloomberg"]``.
    Pure regular expressions over English and German; other languages yield nothing yet.
    """
    found: list[tuple[int, str]] = []
    folded = _folded(text)
    for pattern, needs, caseless in PATTERNS:
        if not any(word in (folded if caseless else text) for word in needs):
            continue
        for match in pattern.finditer(text):
            name = _clean(match.group("name"))
            if name:
                found.append((match.start("name"), name))
    names: list[str] = []
    for _pos, name in sorted(found):
        if name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


_ODD_CASES = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
"""The characters other than ASCII letters that Python's ``re`` matches to an ASCII letter under
IGNORECASE (capital I with dot, dotless i, long s and the Kelvin sign), as that letter."""


def _folded(text: str) -> str:
    """``text`` lower-cased, each of ``_ODD_CASES`` as its ASCII letter: a text that a ``(?i:…)``
    pattern of a lower-case ASCII word matches holds that word here."""
    return (text.translate(_ODD_CASES) if any(c in text for c in "\u0130\u0131\u017f\u212a") else text).lower()


_LEADING_ARTICLES = frozenset({"the", "die", "der", "das", "le", "la", "les", "el", "il", "lo"})
# Words an initialism skips ("Frankfurter Allgemeine Zeitung" → FAZ, "The New York Times" → NYT).
_MINOR_WORDS = _LEADING_ARTICLES | {"of", "and", "&", "und", "de", "du"}
# German transliteration (DIN 5007-2), as English-language papers write German names: "Sueddeutsche".
_GERMAN_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _compact(text: str) -> str:
    return re.sub(r"[^\w]|_", "", text)


def _stripped(text: str) -> str:
    """Diacritics removed (Unicode NFKD, combining marks dropped): "süddeutsche" → "suddeutsche"."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def name_keys(name: str) -> set[str]:
    """Comparison keys of an outlet name, a cited name or a domain label: lower-case letters and
    digits only, with and without a leading article ("The Guardian" → ``guardian``,
    ``theguardian``, which is the domain label of theguardian.com), and each of those with German
    umlauts transliterated (``sueddeutschezeitung``) and with diacritics stripped
    (``suddeutschezeitung``), so the spellings English papers use meet the outlet's own."""
    words = name.lower().split()
    forms = {"".join(words)}
    if len(words) > 1 and words[0] in _LEADING_ARTICLES:
        forms.add("".join(words[1:]))
    keys = set()
    for form in forms:
        keys |= {_compact(form), _compact(form.translate(_GERMAN_FOLD)), _compact(_stripped(form))}
    return keys - {""}


def initialism(name: str) -> str | None:
    """The initials of a name of two words or more, minor words skipped, lower-case ("Süddeutsche
    Zeitung" → ``sz``, "Frankfurter Allgemeine Zeitung" → ``faz``, "The New York Times" → ``nyt``);
    None for a one-word name."""
    words = [w for w in re.findall(r"[\w&]+", name.lower()) if w not in _MINOR_WORDS]
    return "".join(_stripped(w)[0] for w in words) if len(words) > 1 else None


def domain_labels(cited: str) -> set[str]:
    """The first labels a domain of the outlet ``cited`` names may have: the keys of its leading
    words (whole words: "Welt am Sonntag" → ``welt``, ``weltam``, ``weltamsonntag``, …), each also
    with the English article a domain may carry (``theguardian`` for "Guardian")."""
    words = cited.split()
    keys = set().union(*(name_keys(" ".join(words[:k])) for k in range(1, len(words) + 1))) if words else set()
    return keys | {"the" + key for key in keys if not key.startswith("the")}


def refers_to(cited: str, domain: str, names: list[str]) -> bool:
    """Whether the name ``cited`` (from ``cited_names``) names the outlet of registrable ``domain``
    (``sueddeutsche.de``) known by ``names`` (its pages' site names, its feeds' titles):

    * a key of the cited name (``name_keys``) equals a key of one of the names or of their leading
      words (two or more, when the cited name has two or more: "Frankfurter Allgemeine" for
      "Frankfurter Allgemeine Zeitung", not "Frankfurter");
    * or the domain's first label is one of ``domain_labels(cited)`` ("Sueddeutsche Zeitung",
      "Welt am Sonntag" and "Guardian" name sueddeutsche.de, welt.de and theguardian.com;
      "Weltwoche" is not welt.de);
    * or the cited name is an all-capitals abbreviation of two to five letters ("SZ", "FAZ",
      "NYT") that is the initialism of one of the names or of their leading words."""
    if domain.lower().split(".")[0] in domain_labels(cited):
        return True
    wanted = name_keys(cited)
    words = cited.split()
    short = cited.strip()
    abbreviation = short.lower() if 2 <= len(short) <= 5 and short.isalpha() and short.isupper() else None
    for known in filter(None, names):
        known_words = known.split()
        forms = [known, *(" ".join(known_words[:k]) for k in range(2, len(known_words)))]
        if any(wanted & name_keys(form) for form in (forms if len(words) >= 2 else forms[:1])):
            return True
        if abbreviation and any(initialism(form) == abbreviation for form in forms):
            return True
    return False
