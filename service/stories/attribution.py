"""Layer 5: who says whom reported it. Finds phrases that attribute a report to another outlet
("Bloomberg reported", "according to Reuters", "citing the Financial Times", "laut Spiegel",
"wie die Welt berichtete", "berichtete die Welt") and returns the names they cite.

Names are strings here; ``linker`` resolves them to outlets (by domain label, outlet name or feed
title) and to that outlet's article in the same story. A name that resolves to no outlet is kept
only if it is a well-known wire service (``AGENCIES``), so "according to Smith" is dropped.
"""

from __future__ import annotations

import re

# Wire services and outlets cited often enough to keep even when we hold none of their articles.
AGENCIES = frozenset(
    "reuters ap associated press afp agence france-presse dpa bloomberg apa sid epd kna ansa efe xinhua tass "
    "interfax kyodo yonhap bbc cnn".split(" ")
) | {"associated press", "agence france-presse", "new york times", "wall street journal", "financial times"}

# A name: up to five capitalised words, optionally joined by "of"/"de"/"&"; lower-case articles
# before it ("die Welt", "the Guardian") are not part of it.
_NAME = r"(?P<name>(?:dpa|afp|epd|kna|sid|[A-ZÄÖÜ][\w&'’\-]*)(?:[ \t]+(?:of[ \t]+|de[ \t]+|&[ \t]+)?(?:[A-ZÄÖÜ][\w&'’\-]*)){0,4})"
_ART = r"(?:(?i:the|die|der|dem|den|das|des)\s+)?"
_MEDIA = r"(?:(?:German|British|US|U\.S\.|American|French|news|media|Russian|Chinese|business|financial)\s+)*(?:(?:news\s+)?(?:outlet|agency|newspaper|broadcaster|magazine|daily|paper|website|network|channel)\s+)?"
_DE_MEDIA = r"(?:(?:Nachrichtenagentur|Agentur|Zeitung|Tageszeitung|Magazin|Sender|Nachrichtenmagazin|Portal)\s+)?"

PATTERNS = [
    # English
    re.compile(rf"(?i:\baccording\s+to\s+){_ART}{_MEDIA}{_NAME}"),
    re.compile(rf"(?i:\b(?:citing|cited\s+by|reported\s+by|told|quoted\s+by)\s+){_ART}{_MEDIA}{_NAME}"),
    re.compile(rf"{_NAME}\s+(?:had\s+|has\s+|first\s+|earlier\s+|also\s+)?(?:reported|reports|said\s+in\s+a\s+report|wrote|broke\s+the\s+news)\b"),
    # German
    re.compile(rf"(?i:\blaut\s+){_ART}{_DE_MEDIA}{_NAME}"),
    re.compile(rf"(?i:\b(?:wie|was)\s+){_ART}{_DE_MEDIA}{_NAME}\s+(?:zuerst\s+|zuvor\s+|am\s+\w+\s+)?(?:berichtet|berichtete|meldet|meldete|schrieb|schreibt)\b"),
    re.compile(rf"(?i:\b(?:berichtet|berichtete|berichteten|meldet|meldete|schrieb|schreibt)\s+){_ART}{_DE_MEDIA}{_NAME}"),
    re.compile(rf"{_NAME}\s+(?:hatte\s+|hat\s+)?(?:berichtet|berichtete|gemeldet|meldete)\b"),
    re.compile(rf"(?i:\b(?:unter\s+Berufung\s+auf|zufolge\s+)\s*){_ART}{_DE_MEDIA}{_NAME}"),
    re.compile(rf"\b{_ART}{_DE_MEDIA}{_NAME}\s+zufolge\b"),
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
    for pattern in PATTERNS:
        for match in pattern.finditer(text):
            name = _clean(match.group("name"))
            if name:
                found.append((match.start("name"), name))
    names: list[str] = []
    for _pos, name in sorted(found):
        if name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


def name_key(name: str) -> str:
    """A comparison key for an outlet name or domain label: lower-case letters and digits only,
    leading articles dropped (``"Die Welt"`` → ``"welt"``, ``"the Guardian"`` → ``"guardian"``)."""
    words = name.lower().split()
    while len(words) > 1 and words[0] in {"the", "die", "der", "das", "le", "la", "el"}:
        words = words[1:]
    return re.sub(r"[^a-z0-9äöüß]", "", "".join(words))
