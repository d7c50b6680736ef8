"""Articles in scripts written without spaces between words (Japanese, Chinese), through the real
pipeline: each outlet on its own host name (resolved to the test server by the service's resolver
hook), pages without a ``lang`` attribute, extracted, linked, and read through the API over HTTP.
A whole Japanese report is a body of text, not a headline: it has a language, a word count of its
length, and joins a story only on the evidence a body of text needs."""

from __future__ import annotations

import re

import httpx

from tests import story_texts as st
from tests.ingest_helpers import poll_outlets_in_order

NIKKEI_TITLE = "東京株式市場、日経平均が反落 半導体株に売り"
NIKKEI = ("3日の東京株式市場で日経平均株価は反落し、前日比312円安の3万8140円で取引を終えた。前日の米国市場でハイテク株が下落した流れを受け、"
          "東京エレクトロンやアドバンテストなど半導体関連株に売りが広がった。外国為替市場で円高・ドル安が進んだことも輸出関連株の重荷となった。"
          "市場関係者からは、来週の米連邦公開市場委員会を前に積極的な売買を手控える動きが目立ったとの声が聞かれた。東証プライム市場の売買代金は概算で4兆1200億円だった。")
SEVERSTAL_TITLE = "Мосбиржа приостановила торги акциями «Северстали»"
SEVERSTAL = """Московская биржа во вторник приостановила торги акциями металлургической компании «Северсталь» после сообщения о продаже крупного пакета бумаг.

По данным биржи, объём сделки составил 42 миллиарда рублей. Покупатель пакета не раскрывается, представители компании отказались от комментариев.

Аналитики ожидают, что торги возобновятся в четверг, после публикации официального сообщения эмитента."""  # noqa: RUF001 (Cyrillic)

OUTLETS = {  # host: (outlet, language, key, title, text, published)
    "www.vedomosti.ru": ("Ведомости", "ru", "severstal", SEVERSTAL_TITLE, SEVERSTAL, "Tue, 03 Jun 2025 07:00:00 GMT"),
    "www.nikkei.com": ("日本経済新聞", "ja", "nikkei", NIKKEI_TITLE, NIKKEI, "Tue, 03 Jun 2025 07:10:00 GMT"),
}



async def test_a_japanese_report_is_a_body_of_text_not_a_headline(server, settings, sessions, workers, api):
    for host, (outlet, lang, key, title, text, published) in OUTLETS.items():
        page = st.page(title, text, lang).replace(f' lang="{lang}"', "")  # neither page nor feed says the language
        server.add(f"/{key}.html", page, host=host, Content_Type="text/html; charset=utf-8")
        server.add("/feed.xml", st.feed(f"http://{host}/", outlet, "", [(title, f"http://{host}/{key}.html", published)]),
                   host=host, Content_Type="application/rss+xml")
    # the Russian report first, the Japanese one after it
    await poll_outlets_in_order(server, settings, sessions, workers, list(OUTLETS))

    items = {a["url"].rsplit("/", 1)[1]: a for a in httpx.get(f"{api}/v1/articles").json()["items"]}
    nikkei, severstal = items["nikkei.html"], items["severstal.html"]
    assert nikkei["extraction_status"] == "ok" and nikkei["language"] == "ja"
    # Each ideograph and kana is a word, as word processors count Japanese; so is each run of digits.
    assert nikkei["word_count"] == sum(ch.isalpha() and not ch.isascii() for ch in NIKKEI) + len(re.findall("[0-9]+", NIKKEI))
    # Two stock-market reports of one morning, of two exchanges: two stories.
    assert nikkei["story_id"] is not None and severstal["story_id"] is not None
    assert nikkei["story_id"] != severstal["story_id"]


async def test_a_whole_japanese_report_beside_a_cookie_link_is_no_consent_wall(server, settings, sessions, workers, api):
    """The page's footer links its cookie settings, as most news sites do; its article is 400 words
    in Japanese. It is free to read and its text is the page's, not the feed's summary."""
    host = "www.nikkei.com"
    text = NIKKEI + "\n\n" + NIKKEI.replace("3日", "4日")
    page = st.page(NIKKEI_TITLE, text, "ja").replace(
        "</footer>", "<p><a href='/privacy'>Cookie settings</a> · <a href='/terms'>Terms of use</a></p></footer>")
    server.add("/nikkei.html", page, host=host, Content_Type="text/html; charset=utf-8")
    summary = "日経平均 反落 半導体 円高 米国 金利 東証 プライム 売買代金 概算"  # ten words by its spaces
    server.add("/feed.xml", f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>日本経済新聞</title>'
               f"<link>http://{host}/</link><description>d</description><item><title>{NIKKEI_TITLE}</title>"
               f"<link>http://{host}/nikkei.html</link><description>{summary}</description>"
               f"<pubDate>Tue, 03 Jun 2025 07:10:00 GMT</pubDate></item></channel></rss>",
               host=host, Content_Type="application/rss+xml")
    await poll_outlets_in_order(server, settings, sessions, workers, [host])

    (listed,) = httpx.get(f"{api}/v1/articles").json()["items"]
    article = httpx.get(f"{api}/v1/articles/{listed['id']}").json()
    assert (article["extraction_status"], article["access"], article["access_reason"]) == ("ok", "free", None)
    assert article["text_source"] == "page" and article["text"].startswith(NIKKEI[:20])
