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

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from service.models import MAX_ID
from service.net.urls import outlet_named


class SubscriptionFilter(BaseModel):
    """What a subscription wants. Empty lists and null mean "no constraint"."""

    model_config = ConfigDict(extra="forbid")

    terms: list[str] = Field(default_factory=list, max_length=50, description="Query terms or phrases, matched in title and text.")
    match: Literal["all", "any"] = Field(default="all", description="Whether all terms or any one term must appear.")
    languages: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]] = Field(
        default_factory=list, max_length=50, description="ISO 639-1 codes (two letters)."
    )
    outlets: list[Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00\s]+$")]] = Field(
        default_factory=list, max_length=200, description="Registrable domains, e.g. welt.de (www.welt.de or a URL of the site is read as welt.de)."
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

    @field_validator("languages")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]

    @field_validator("outlets")
    @classmethod
    def _outlet_keys(cls, value: list[str]) -> list[str]:
        return [outlet_named(v) for v in value]  # www.welt.de or a URL of it: welt.de, as articles' outlets are keyed


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
