"""Subscription filters: which events a subscription receives.

A filter is a conjunction: every field that is set must match. Query terms are matched against
the title and the text, ignoring case and accents ("Zürich" matches "zurich", "ÉTÉ" matches "été")
on word boundaries; a term with several words matches as a phrase.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from service.ingest.feeds.entries import language_named
from service.models import MAX_ID
from service.net.urls import outlet_named

_STORED = {"stored": True}
"""The validation context of a filter read back from the database (``SubscriptionFilter.stored``)."""


def _language(value: str, info: ValidationInfo) -> str:
    """A language tag's key (``entries.language_named``: ``pt-BR`` → ``pt``); as stored, lower-cased only."""
    return value.strip().lower() if info.context is _STORED else language_named(value)


def _outlet(value: str, info: ValidationInfo) -> str:
    """An outlet's key (``urls.outlet_named``: ``www.welt.de`` or a URL of it → ``welt.de``, as articles'
    outlets are keyed); as stored, a value no host can be read from stays as it is, lower-cased."""
    try:
        return outlet_named(value)
    except ValueError:
        if info.context is not _STORED:
            raise
        return value.strip().lower()


class SubscriptionFilter(BaseModel):
    """What a subscription wants. Empty lists and null mean "no constraint"."""

    model_config = ConfigDict(extra="forbid")

    terms: list[str] = Field(default_factory=list, max_length=50, description="Query terms or phrases, matched in title and text.")
    match: Literal["all", "any"] = Field(default="all", description="Whether all terms or any one term must appear.")
    languages: list[Annotated[str, StringConstraints(min_length=1, max_length=35), AfterValidator(_language)]] = Field(
        default_factory=list, max_length=50, description="BCP 47 language tags (en, pt-BR, zh-Hant-TW), kept as their ISO 639 "
        "language (pt): script and region are ignored, as by /v1/articles?lang.",
    )
    outlets: list[Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_outlet)]] = Field(
        default_factory=list, max_length=200, description="Registrable domains, e.g. welt.de (www.welt.de or a URL of the site is read "
        "as welt.de); a name no host can be read from is refused, an outlet with no article yet is accepted (its articles will match).",
    )
    feeds: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=1000, description="Feed ids the article was seen in."
    )
    min_outlets: int | None = Field(default=None, ge=1, le=1000, description="Minimum number of outlets in the article's story.")

    @field_validator("terms")
    @classmethod
    def _terms_not_blank(cls, value: list[str]) -> list[str]:
        if any(not t.strip() or len(t) > 200 for t in value):
            raise ValueError("terms must be non-blank and at most 200 characters")
        return value

    @classmethod
    def stored(cls, data: dict) -> SubscriptionFilter:
        """A filter as stored (a subscription's ``filter`` column). It was checked when written; a
        value accepted by an older, looser rule (a language ``xx``, an outlet ``[``) is read as it
        is, never refused: an event must not fail on a subscription's old filter."""
        return cls.model_validate(data, context=_STORED)


@dataclass
class Candidate:
    """The facts of one event that filters look at: for an article its own; for a story event the
    story's languages, outlets and outlet count with the title and text of the article that
    caused it."""

    title: str = ""
    text: str = ""
    languages: set[str] = field(default_factory=set)
    outlets: set[str] = field(default_factory=set)
    feed_ids: set[int] = field(default_factory=set)
    outlet_count: int = 1


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks removed, case-folded; ``ß`` → ``ss``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _term_pattern(term: str) -> re.Pattern[str]:
    words = fold(term).split()
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)")


def matches(flt: SubscriptionFilter, candidate: Candidate) -> bool:
    """True when ``candidate`` satisfies every constraint of ``flt``."""
    if flt.languages and not (candidate.languages & set(flt.languages)):
        return False
    if flt.outlets and not (candidate.outlets & set(flt.outlets)):
        return False
    if flt.feeds and not (candidate.feed_ids & set(flt.feeds)):
        return False
    if flt.min_outlets is not None and candidate.outlet_count < flt.min_outlets:
        return False
    if flt.terms:
        haystack = fold(f"{candidate.title}\n{candidate.text}")
        found = (_term_pattern(term).search(haystack) is not None for term in flt.terms)
        return all(found) if flt.match == "all" else any(found)
    return True
