"""Language-independent names (``stories.names``), citation evidence in ``clustering.choose`` and
the text-vector cascade, in memory."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from service.stories import headlines, names
from service.stories.clustering import Params, StoryState, cascade_near, choose
from service.stories.features import ArticleFeatures


def test_the_same_places_bodies_and_nationalities_meet_across_languages():
    german = names.named_things(
        "Peking ist bereit, Soldaten für eine Friedenstruppe der Vereinten Nationen in der Ukraine zu stellen. "
        "Ein chinesischer Diplomat sagte in Brüssel, auch Russlands Zustimmung sei nötig; rund 1.500 Soldaten.", "de")
    english = names.named_things(
        "Beijing is ready to send troops to a United Nations force in Ukraine, a Chinese diplomat said in Brussels. "
        "Russia would have to agree, he said, to a force of about 1,500.", "en")
    shared = german & english
    assert {"c:UN", "c:UA", "c:RU", "l:zh", "1500"} <= shared
    assert len([k for k in shared if k.startswith("g:")]) == 2  # Beijing/Peking, Brussels/Brüssel
    assert not {"soldaten", "friedenstruppe", "diplomat", "zustimmung"} & german  # German nouns are not names


def test_german_compounds_codes_and_people_are_names():
    found = names.named_things("Der UN-Sicherheitsrat tagte am Dienstag. Bürgermeisterin Hanna Kessler lehnte ab.", "de")
    assert {"c:UN", "d:1", "kessler"} <= found
    assert "burgermeisterin" not in found and "sicherheitsrat" not in found
    assert names.named_things("The EU and the UN met on Tuesday in March.", "en") >= {"c:EU", "c:UN", "d:1", "m:3"}


def test_function_words_and_title_case_capitals_are_not_names():
    """A capitalised "The" after a dateline, "Los" opening a sentence the splitter missed, and the
    capitals of a title-case headline are not names; a headline word the body also capitalises is,
    and so is every capitalised word of a headline without a body (nothing to check it against)."""
    found = names.named_things(
        "In Chess Game With Iran, Trump Has Only Bad Options\n"
        "WASHINGTON The Trump administration is facing a dilemma in Iraq. Los Angeles was quiet.", "en")
    assert {"trump", "c:IR", "c:IQ"} <= found
    assert not {"the", "chess", "game", "with", "has", "only", "bad", "options"} & found
    assert names.named_things("Radio Sonora Los cargos contra Trump llegan al Senado", "es") >= {"trump", "senado"}
    assert "los" not in names.named_things("Radio Sonora Los cargos contra Trump llegan al Senado", "es")
    assert {"bachelor", "finale", "rose"} <= names.named_things("The Bachelor Finale: Who Gets The Final Rose Tonight?", "en")
    # Only the function words of the text's own language (and English) are dropped: in English
    # text the German "seine" and "mit" are names; in German text they are not.
    assert {"seine", "mit"} <= names.named_things("Paris floods: the Seine rose again, and MIT engineers came.", "en")
    assert not {"seine", "mit", "ihre"} & names.named_things("Der Minister sagte, Seine Partei stimme zu. Ihre Daten Mit Vorsicht.", "de")


def _feats(vector, lang="en", published=0.0, entities=frozenset(), text=True):
    v = np.asarray(vector, dtype=np.float32)
    return ArticleFeatures(vector=v / np.linalg.norm(v), lang=lang, terms=Counter(), entities=frozenset(entities),
                           published=published, has_text=text, chars=1000)


def test_a_citation_chooses_the_source_story_and_bridges_a_later_story_but_not_an_earlier_one():
    earlier = StoryState.start("earlier", _feats([1, 0.2, 0], published=0.0))           # a related report the day before
    source = StoryState.start("source", _feats([0.6, 0.8, 0], published=3600 * 20))
    retold = StoryState.start("retold", _feats([1, 0.25, 0], published=3600 * 22))       # an uncited retelling
    article = _feats([1, 0.3, 0], published=3600 * 24)
    params = Params(threshold=0.6)  # these synthetic articles have one signal only: the lead cosine
    plain = choose(article, [earlier, source, retold], params)
    assert plain.key in {"earlier", "retold"} and plain.evidence == "similarity"
    cited = choose(article, [earlier, source, retold], params, cited={"source": 3600 * 20})
    assert cited.key == "source" and cited.evidence == "citation"
    assert cited.bridged == ["retold"]  # began after the cited report; "earlier" began before it
    # Citing an outlet whose story is on another subject decides nothing.
    unrelated = StoryState.start("unrelated", _feats([0, 0, 1], published=3600 * 20))
    assert choose(article, [unrelated], params, cited={"unrelated": 3600 * 20}).key is None


def test_the_cascade_asks_for_the_text_vector_only_near_the_threshold():
    params = Params()
    story = StoryState.start(1, _feats([1, 0, 0]))
    far = _feats([0, 1, 0])
    same = _feats([1, 0, 0])
    assert not cascade_near(far, [story], params)   # nowhere near: a new story either way
    assert not cascade_near(same, [], params)       # nothing to compare with
    assert cascade_near(_feats([1, 0, 0]), [story, StoryState.start(2, _feats([1, 0.01, 0]))], params) == [1, 2]  # which one?


def test_the_cross_language_decision_is_asked_only_where_the_text_signal_is_missing(monkeypatch):
    """A German story and an English article whose combined score is below the threshold: the
    cross-language decision (here made to accept) links them only when one side has no text
    vector; with text vectors on both sides the combiner, which reads them, has the last word. The
    cascade therefore asks for the text vector of an article whose decision it would change."""
    from service.stories import clustering, crosslingual

    accept = crosslingual.Decision({"weights": [0, 0, 0], "intercept": 0, "threshold": 0.0})
    monkeypatch.setattr(crosslingual, "default_decision", lambda: accept)
    params = Params(threshold=0.99)
    german = StoryState.start("de", _feats([1, 0.5, 0], lang="de"))
    article = _feats([0.5, 1, 0])
    assert clustering.similarity(article, german, params=params) < params.threshold - params.text_margin
    assert choose(article, [german], params).key == "de"  # no text vectors: the decision links them
    assert cascade_near(article, [german], params) == ["de"]  # ... and the text vector could undo that
    text = np.ones(4, dtype=np.float32) / 2
    german_text = StoryState.start("de", dataclasses.replace(_feats([1, 0.5, 0], lang="de"), text_vector=text))
    assert choose(dataclasses.replace(article, text_vector=-text), [german_text], params).key is None
    english = StoryState.start("en", _feats([1, 0.5, 0]))  # same language: the decision is never asked
    assert choose(article, [english], params).key is None and not cascade_near(article, [english], params)


def test_one_digit_numbers_are_no_evidence_for_a_headline_the_encoder_cannot_read():
    """Two headlines in a language the title encoder does not read (Slovak) that share "3" and "1"
    (rooms, bathrooms) and one name share no event; a number of two digits, as a second name, is
    evidence."""
    story = {"c:CN", "3", "1", "120"}
    ad = _headline([1, 0, 0], {"c:CN", "3", "1"}, "sk")
    assert not headlines.enough_evidence(ad, ["sk"], {}, story)
    assert headlines.enough_evidence(dataclasses.replace(ad, entities=frozenset({"c:CN", "120"})), ["sk"], {}, story)
    assert not headlines.evidential("3") and headlines.evidential("12") and headlines.evidential("c:CN")


def _headline(vector, names_, lang):
    return _feats(vector, lang=lang, entities=names_, text=False)


@pytest.mark.parametrize("lang", ["sk", "en"])
def test_stories_close_by_centroid_merge_only_with_names_in_common_outside_the_encoders_languages(lang):
    """Two strands of three headlines each, on nearly one title + lead vector, that share no name:
    in Slovak (not one of USE's languages, where that cosine means nothing) they stay two stories;
    in English the centroids' cosine is evidence, and they merge, as they do in either language
    when they share two names."""
    from service.stories.clustering import OnlineClusterer, merge_supported, mergeable

    one = [_headline([1, 0.01 * i, 0], {"polacek", "hornad", "kosice"}, lang) for i in range(3)]
    two = [_headline([1, 0, 0.01 * i], {"presov", "pneumatiky", "hasici"}, lang) for i in range(3)]
    clusterer = OnlineClusterer(Params())
    first = [clusterer.add(article)[0] for article in one]
    second = [clusterer.add(article)[0] for article in two]
    assert first == [0, 0, 0] and second[:2] == [1, 1]  # each strand its own story (no name in common)
    a, b = clusterer.stories
    assert mergeable(b, [(a.key, a.centroid, a.count)]) == [a.key]  # close enough by centroid
    assert (second[2] == 0) == (lang == "en") == merge_supported(a, b)  # the third of strand two: merged?
    b.entities.update({"polacek", "hornad"})
    assert merge_supported(a, b)
