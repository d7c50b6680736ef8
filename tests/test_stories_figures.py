"""Figures a text states (``stories.figures``) and the ``contradicted`` signal they give
(``clustering.signals``): two reports of one topic about different events contradict each other;
one event retold in other words, another language or with rounded figures does not."""

from __future__ import annotations

from collections import Counter

import numpy as np

from service.stories import figures
from service.stories.clustering import StoryState, signals
from service.stories.features import ArticleFeatures

# One topic (Turkey's daily Covid-19 figures), two days: the same names and words, other figures.
MONDAY = (
    "Turkey's health ministry said on April 13 that 1,296 people have died of Covid-19 so far, "
    "with 61,049 confirmed cases and 3,957 patients recovered."
)
TUESDAY = (
    "Turkey's health ministry said on April 14 that 1,403 people have died of Covid-19 so far, "
    "with 65,111 confirmed cases and 4,799 patients recovered."
)
# Monday's report retold: rounded, in German, with German separators and a German date.
MONDAY_RETOLD = (
    "Das türkische Gesundheitsministerium meldete am 13. April mehr als 1.200 Tote; "
    "die Zahl der bestätigten Fälle stieg auf 61.049, rund 4.000 Patienten gelten als genesen."
)
# The same in Turkish, with the thousands written as a word.
MONDAY_TURKISH = "Sağlık Bakanlığı 13 Nisan'da Kovid-19 nedeniyle 1 bin 296 kişinin öldüğünü, vaka sayısının 61 bin 49 olduğunu açıkladı."  # noqa: RUF001 (Turkish dotless i)


def test_figures_are_read_alike_in_either_convention_and_with_scale_words():
    assert figures.figures("1.234 Tote, 3,5 Prozent, 1,2 Millionen Euro") == figures.figures("1,234 dead, 3.5 percent, 1.2 million euros")
    assert figures.figures("1.2 million") == ((1_200_000.0, 100_000.0),)
    assert figures.figures("32 bin 692 kişi") == ((32_692.0, 1.0),)


def test_years_times_small_counts_dates_and_names_are_not_figures():
    assert figures.figures("In 2020, at 12:30 and 18.30 Uhr, three or 5 people met on 15 March, 15. März and 12.03.2020.") == ()
    assert figures.figures("el 15 de marzo, on March 15th, 15 Mart, Covid-19 and an F-35") == ()


def test_two_days_of_one_topic_contradict_and_retellings_do_not():
    monday, tuesday = figures.figures(MONDAY), figures.figures(TUESDAY)
    assert figures.contradict(monday, tuesday) and figures.contradict(tuesday, monday)
    for retold in (MONDAY_RETOLD, MONDAY_TURKISH):  # "more than 1,200" is 1,296 rounded; "rund 4.000" is 3,957
        assert not figures.contradict(figures.figures(retold), monday)
        assert not figures.contradict(monday, figures.figures(retold))


def test_a_round_figure_covers_the_range_of_its_last_significant_digit_only():
    assert figures.agrees((1200.0, 100.0), (1234.0, 1.0))  # "more than 1,200"
    assert figures.agrees((1200.0, 100.0), (1160.0, 1.0))  # "about 1,200"
    assert not figures.agrees((1200.0, 100.0), (1310.0, 1.0))
    assert not figures.agrees((1296.0, 1.0), (1297.0, 1.0))
    assert figures.agrees((3.5, 0.1), (3.54, 0.01)) and not figures.agrees((3.5, 0.1), (3.6, 0.1))
    rounded = figures.figures("more than 1,200 dead and 300 injured")
    assert not figures.contradict(figures.figures("1,234 dead and 12 missing"), rounded)
    assert figures.contradict(figures.figures("1,310 dead and 12 missing"), rounded)


def test_absence_is_not_contradiction():
    silent = figures.figures("Turkey's health ministry reported more deaths from Covid-19 on Tuesday.")
    one_figure = figures.figures("Turkey's health ministry said 1,403 people have died of Covid-19.")
    monday = figures.figures(MONDAY)
    assert not figures.contradict(monday, silent) and not figures.contradict(silent, monday)
    assert not figures.contradict(monday, one_figure)  # one figure is too little to judge


def _article(text: str, text_vector: bool = True) -> ArticleFeatures:
    vector = np.ones(4, dtype=np.float32) / 2
    return ArticleFeatures(
        vector=vector, lang="en", terms=Counter(), entities=frozenset(), figures=figures.figures(text),
        text_vector=vector if text_vector else None,
    )


def test_a_story_contradicts_an_article_only_while_none_of_its_figures_agree():
    story = StoryState.start(1, _article(MONDAY))
    assert signals(_article(TUESDAY), story).contradicted == signals(_article(TUESDAY), story).lead > 0
    assert signals(_article(MONDAY_RETOLD), story).contradicted == 0.0
    assert signals(_article(TUESDAY, text_vector=False), story).contradicted == 0.0  # headline models do not read it
    story.add(_article(TUESDAY))  # a story that holds both days contradicts neither
    again = StoryState.from_record(1, story.to_record())
    assert again.figures == story.figures
    assert signals(_article(TUESDAY), again).contradicted == 0.0
    old = story.to_record()
    del old["figures"]  # a record saved before stories kept them
    assert StoryState.from_record(1, old).figures == ()
