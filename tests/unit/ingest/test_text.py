"""``service.ingest.text.word_count``: words of spaced scripts by their spaces, of Chinese and
Japanese by their characters."""

from __future__ import annotations

import pytest

from service.ingest.text import word_count


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The bridge closed on Monday.", 5),
        ("Die Stadt Zürich sperrt die Brücke.", 6),
        ("東京株式市場、日経平均が反落", 13),  # 13 ideographs and kana; the comma separates
        ("日経平均は3万8140円で終えた。", 13),  # 11 characters and two runs of digits
        ("北京市政府周二宣布新的防疫措施，此主题相关图片如下", 24),  # noqa: RUF001 (a Chinese comma)
        ("ドル・円", 3),  # the middle dot separates
        ("Nikkei 225 指数が下落", 7),  # mixed: two spaced words, five characters
        ("", 0),
    ],
)
def test_word_count(text, words):
    assert word_count(text) == words
