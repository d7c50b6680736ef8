"""Invented news for the story tests: one event (a bridge closed in the fictional town of
Lindenfurt) reported by a German outlet, an English wire, and a third outlet that retells both;
plus an unrelated story. Pages and feeds are served by the test server."""

from __future__ import annotations

from xml.sax.saxutils import escape

WELT_TITLE = "Lindenfurt sperrt die Ostbrücke nach Rissen im Tragwerk"
WELT = """Die Stadt Lindenfurt hat am Montagmorgen die Ostbrücke über den Fluss Merla vollständig gesperrt. Prüfer hatten bei einer Routinekontrolle tiefe Risse im stählernen Tragwerk der Brücke entdeckt.

Nach Angaben der Stadtverwaltung überqueren täglich rund 12.000 Pendler die Brücke. Bürgermeisterin Hanna Kessler sagte, die Sicherheit der Menschen gehe vor, auch wenn die Sperrung den Verkehr in der ganzen Region belaste.

Die Reparatur der Ostbrücke wird nach ersten Schätzungen der Ingenieure mindestens 45 Millionen Euro kosten und mehr als ein Jahr dauern. Bis dahin sollen Busse die Pendler über die Nordbrücke umleiten.

Die Opposition im Stadtrat warf der Verwaltung vor, Warnungen aus früheren Gutachten ignoriert zu haben. Kessler wies das zurück und kündigte eine unabhängige Untersuchung an."""

BLOOMBERG_TITLE = "German town of Lindenfurt shuts Ostbrücke bridge after cracks found"
BLOOMBERG = """The German town of Lindenfurt closed its Ostbrücke bridge over the Merla river on Monday after inspectors found deep cracks in the steel structure during a routine check.

About 12,000 commuters cross the bridge every day, according to the town administration. Mayor Hanna Kessler said the safety of residents came first, even though the closure would strain traffic across the region.

Engineers estimate that repairing the Ostbrücke will cost at least 45 million euros and take more than a year. Buses will divert commuters over the northern bridge in the meantime.

Opposition councillors accused the administration of ignoring warnings from earlier surveys, a charge Kessler rejected as she announced an independent inquiry."""

GLOBE_TITLE = "Lindenfurt bridge closure: what we know about the Ostbrücke cracks"
GLOBE = """German media outlet Welt reported on Monday morning that the town of Lindenfurt had closed the Ostbrücke bridge over the Merla river after inspectors discovered cracks in its steel frame.

Bloomberg reported later that repairs are expected to cost at least 45 million euros and to take more than a year, leaving about 12,000 daily commuters to take buses over the northern bridge.

Mayor Hanna Kessler has promised an independent inquiry after opposition councillors said earlier warnings about the bridge had been ignored. The town has not said when the bridge could reopen."""

ORCHARD_TITLE = "Record apple harvest leaves Kent growers short of storage"
ORCHARD = """Fruit growers in Kent are running out of cold storage after the largest apple harvest in two decades, the regional growers' association said on Tuesday.

Warm spring weather and a wet summer produced heavy crops of Gala and Braeburn apples, but many farms lack the refrigerated warehouses needed to keep the fruit until spring.

Some growers are selling surplus apples to cider makers at a loss, while others have rented shipping containers fitted with cooling units. The association asked supermarkets to buy more British apples over the winter."""


def page(title: str, body: str, lang: str) -> str:
    """An article page trafilatura can extract."""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in body.split("\n\n"))
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f"<body><header><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></header>"
        f"<article><h1>{escape(title)}</h1>{paragraphs}</article>"
        f"<footer><p>Impressum · Datenschutz · Contact</p></footer></body></html>"
    )


def feed(site: str, title: str, lang: str, items: list[tuple[str, str, str]]) -> str:
    """An RSS 2.0 document for outlet ``site`` (its channel link); items are (title, link, RFC 822 date)."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<pubDate>{date}</pubDate></item>"
        for t, link, date in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>{escape(site)}</link><language>{lang}</language><description>d</description>{body}</channel></rss>"
    )
