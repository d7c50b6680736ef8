"""Citations of outlets whose names begin a word with an accented capital ("Les Échos"), through
the real pipeline: each outlet on its own host name (resolved to the test server by the service's
resolver hook), the pages extracted, the articles linked, the story read through the API over HTTP."""

from __future__ import annotations

import httpx

from tests import story_texts as st
from tests.ingest_helpers import poll_outlets_in_order

ECHOS_TITLE = "Vantelis met 2,3 milliards d'euros sur la table pour racheter Corvalis"
ECHOS = """Le groupe industriel lyonnais Vantelis a annoncé mardi le rachat de Corvalis, fabricant grenoblois de batteries pour véhicules utilitaires, pour 2,3 milliards d'euros.

L'opération, qui doit encore être approuvée par la Commission européenne, valorise Corvalis à près de quatorze fois son excédent brut d'exploitation. Vantelis financera l'achat par un emprunt bancaire et une augmentation de capital de 600 millions d'euros.

Corvalis emploie 3 400 salariés, dont 2 100 dans son usine de Pont-de-Claix, en Isère. Sa présidente, Claire Audonnet, a assuré que le site serait maintenu et que le siège resterait à Grenoble."""

RETOLD_TITLE = "Vantelis agrees €2.3bn takeover of battery maker Corvalis"
RETOLD = """French industrial group Vantelis has agreed to buy Corvalis, a Grenoble-based maker of batteries for delivery vans, in a deal worth 2.3 billion euros, according to Les Échos.

The transaction still needs clearance from the European Commission. Vantelis plans to pay with a bank loan and a 600 million euro share sale.

Corvalis chief executive Claire Audonnet said the Pont-de-Claix factory, which employs about 2,100 of the company's 3,400 staff, would stay open."""

OUTLETS = {  # host: (outlet, language, key, title, text, published)
    "www.lesechos.fr": ("Les Echos", "fr", "echos", ECHOS_TITLE, ECHOS, "Tue, 03 Jun 2025 06:30:00 GMT"),
    "www.citywire.com": ("City Wire", "en", "retold", RETOLD_TITLE, RETOLD, "Tue, 03 Jun 2025 10:00:00 GMT"),
}



async def test_a_retelling_citing_an_outlet_whose_name_has_an_accented_capital_cites_its_report(
    server, settings, sessions, workers, api
):
    for host, (outlet, lang, key, title, text, published) in OUTLETS.items():
        server.add(f"/{key}.html", st.page(title, text, lang), host=host, Content_Type="text/html; charset=utf-8")
        server.add("/feed.xml", st.feed(f"http://{host}/", outlet, lang, [(title, f"http://{host}/{key}.html", published)]),
                   host=host, Content_Type="application/rss+xml")
    # the French report is linked first, the retelling after it
    await poll_outlets_in_order(server, settings, sessions, workers, list(OUTLETS))

    items = {a["url"].rsplit("/", 1)[1]: a for a in httpx.get(f"{api}/v1/articles").json()["items"]}
    echos, retold = items["echos.html"], items["retold.html"]
    assert retold["story_id"] == echos["story_id"]
    assert retold["cites"] == [{"name": "Les Échos", "outlet": "lesechos.fr", "article_id": echos["id"]}]
    story = httpx.get(f"{api}/v1/stories/{echos['story_id']}").json()
    assert [(c["article_id"], c["cited_name"], c["cited_outlet"], c["cited_article_id"]) for c in story["citations"]] == [
        (retold["id"], "Les Échos", "lesechos.fr", echos["id"])]
