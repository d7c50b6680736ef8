"""Invented news for the story tests: one event (a bridge closed in the fictional town of
Lindenfurt) reported by a German outlet, an English wire, and a third outlet that retells both;
plus an unrelated story. Pages and feeds are served by the test server."""

from __future__ import annotations

from dataclasses import dataclass
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

CONSENT = ("Wir verwenden Cookies und ähnliche Technologien, um Inhalte zu personalisieren, Werbung anzupassen und die "
           "Nutzung unserer Website zu analysieren. Mit einem Klick auf Akzeptieren stimmen Sie der Verarbeitung Ihrer Daten "
           "zu. Ihre Einwilligung können Sie jederzeit in den Einstellungen widerrufen. Weitere Informationen finden Sie in "
           "unserer Datenschutzerklärung.")
"""A cookie dialog extracted in place of an article's body (not about any headline)."""

ORCHARD_TITLE = "Record apple harvest leaves Kent growers short of storage"
ORCHARD = """Fruit growers in Kent are running out of cold storage after the largest apple harvest in two decades, the regional growers' association said on Tuesday.

Warm spring weather and a wet summer produced heavy crops of Gala and Braeburn apples, but many farms lack the refrigerated warehouses needed to keep the fruit until spring.

Some growers are selling surplus apples to cider makers at a loss, while others have rented shipping containers fitted with cooling units. The association asked supermarkets to buy more British apples over the winter."""


# The orchard report retold in Slovak (written for these tests): the language the title encoder does not read.
ORCHARD_SK_TITLE = "Prebytok jabĺk z Kentu končí u výrobcov cídru"
ORCHARD_SK = """Pestovatelia ovocia v anglickom grófstve Kent nemajú kam uskladniť jablká po najväčšej úrode za posledné dve desaťročia, uviedlo v utorok regionálne združenie pestovateľov.

Teplá jar a daždivé leto priniesli bohatú úrodu odrôd Gala a Braeburn, mnohým farmám však chýbajú chladiarenské sklady, v ktorých by ovocie vydržalo až do jari.

Niektorí pestovatelia predávajú prebytočné jablká výrobcom cídru so stratou, iní si prenajali lodné kontajnery s chladiacimi jednotkami. Združenie vyzvalo supermarkety, aby cez zimu nakupovali viac britských jabĺk."""

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


# -- Bilingual scenarios (issue 13) -----------------------------------------------------------------
# Each: a German outlet's report; two English outlets retelling it in their own words (not
# translations: different order, partial overlap of names and numbers, English number and date
# formats), one citing the German outlet, one citing it and a wire service; a related but different
# English report of the day before sharing many names; unrelated news in both languages. Each outlet
# has its own host name (the test resolves them to the test server).


@dataclass(frozen=True)
class Report:
    """One article of a scenario: ``key`` names it in assertions; ``published`` is RFC 822."""

    key: str
    host: str
    outlet: str
    lang: str
    title: str
    body: str
    published: str


@dataclass(frozen=True)
class Scenario:
    """``story``: the keys of the reports that are one story, the first (``first``) the German
    report the others retell; every other report stands alone."""

    name: str
    reports: tuple[Report, ...]
    story: frozenset[str]
    first: str


POLITICS = Scenario(
    name="politics",
    first="welt",
    story=frozenset({"welt", "globe", "courier"}),
    reports=(
        Report("welt", "www.welt.de", "WELT", "de",
               "China bietet Soldaten für UN-Friedenstruppe in der Ukraine an",
               """Peking ist nach Informationen von WELT bereit, sich an einer Friedenstruppe der Vereinten Nationen in der Ukraine zu beteiligen. Das geht aus einem vertraulichen Vermerk des Europäischen Auswärtigen Dienstes hervor, der WELT vorliegt.

Demnach deutete ein ranghoher chinesischer Diplomat bei einem Treffen in Brüssel am vergangenen Donnerstag an, die Volksrepublik könne bis zu 1.500 Soldaten entsenden. Voraussetzung sei ein Mandat des UN-Sicherheitsrats, dem auch Russland zustimmen müsse.

In Brüssel reagierte man zurückhaltend. „Peking will sich als Friedensmacht inszenieren, ohne Moskau wehzutun“, sagte ein EU-Diplomat. Die Regierung in Kiew wollte den Vermerk am Montag nicht kommentieren; das chinesische Außenministerium ließ eine Anfrage bis Redaktionsschluss unbeantwortet.

Seit Beginn des russischen Angriffskriegs im Februar 2022 präsentiert sich China als neutraler Vermittler, hat den Einmarsch aber nie verurteilt.""",
               "Tue, 11 Mar 2025 05:30:00 GMT"),
        Report("globe", "www.dailyglobe.com", "Daily Globe", "en",
               "Beijing open to sending troops for a UN mission in Ukraine, report says",
               """China has signalled to European officials that it could contribute soldiers to a United Nations peacekeeping force in Ukraine, the German newspaper Welt reported on Tuesday, citing EU sources.

A senior Chinese diplomat raised the idea at a meeting in Brussels last week and mentioned a contingent of up to 1,500 troops, the paper said, provided the Security Council approves a mandate that Moscow also backs.

European officials were sceptical. One told the paper that Beijing wanted to look like a peacemaker without upsetting the Kremlin. Kyiv declined to comment.

Beijing has presented itself as a neutral broker since Russia's full-scale invasion in 2022 but has never condemned it, and Western governments have accused Chinese firms of supplying parts for Russian drones.""",
               "Tue, 11 Mar 2025 09:15:00 GMT"),
        Report("courier", "www.atlanticcourier.com", "Atlantic Courier", "en",
               "China floats peacekeeping role in Ukraine as Europe weighs its options",
               """Chinese diplomats have privately suggested that Beijing could put troops into a UN-mandated force to police any ceasefire in Ukraine, according to an internal EU note first reported by Welt.

The offer, described to EU counterparts in Brussels, would involve up to 1,500 Chinese soldiers, two people familiar with the discussions told Reuters. Both said it was conditional on Security Council approval, which would give Russia a veto.

The European External Action Service did not confirm the note. A spokesperson said only that the EU "welcomes any constructive contribution to a just and lasting peace."

Analysts said the move was aimed as much at Washington as at Kyiv. "It lets China claim a seat at the table," said a researcher at a Berlin think tank.""",
               "Tue, 11 Mar 2025 12:40:00 GMT"),
        Report("ministers", "www.atlanticcourier.com", "Atlantic Courier", "en",
               "EU ministers split over security guarantees for Ukraine as ceasefire talks stall",
               """European Union foreign ministers meeting in Brussels on Monday failed to agree on what security guarantees the bloc could offer Ukraine if a ceasefire with Russia is reached.

France and Britain have said they are ready to send troops to a reassurance force, while Germany and Italy want any mission to rest on a United Nations mandate. Diplomats said China had stayed out of the discussions so far.

Kaja Kallas, the EU's foreign policy chief, said the bloc would keep arming Kyiv "for as long as it takes" and announced a further 1.5 billion euros from frozen Russian assets.""",
               "Mon, 10 Mar 2025 17:00:00 GMT"),
        Report("bahn", "www.welt.de", "WELT", "de",
               "Warnstreik legt Regionalverkehr in Bayern lahm",
               """Die Lokführergewerkschaft GDL hat für Dienstag zu einem ganztägigen Warnstreik im Regionalverkehr in Bayern aufgerufen. Betroffen sind nach Angaben der Bahn rund 1.200 Verbindungen, vor allem im Großraum München und Nürnberg.

Die Gewerkschaft fordert 7 Prozent mehr Lohn und eine Verkürzung der Wochenarbeitszeit. Die Bahn nannte den Streik „völlig überzogen“ und riet Pendlern, auf Busse oder das Auto auszuweichen. Ein Notfahrplan soll ab 6 Uhr gelten.""",
               "Tue, 11 Mar 2025 06:00:00 GMT"),
        Report("transfer", "www.dailyglobe.com", "Daily Globe", "en",
               "Manchester club agrees record fee for Brazilian winger",
               """A Manchester club has agreed a club-record fee of 95 million pounds for a 21-year-old Brazilian winger, ending a chase that lasted most of the winter window.

The player is expected to undergo a medical on Wednesday and sign a five-year contract. His former club will keep a 10 percent sell-on clause, and the manager said he hoped the forward would be available for the derby at the weekend.""",
               "Tue, 11 Mar 2025 11:00:00 GMT"),
    ),
)

BUSINESS = Scenario(
    name="business",
    first="hb",
    story=frozenset({"hb", "market", "ledger"}),
    reports=(
        Report("hb", "www.handelsblatt.com", "Handelsblatt", "de",
               "Kronwerk will 4.000 Stellen streichen und Batteriefertigung nach Ungarn verlagern",
               """Der Autozulieferer Kronwerk plant einen drastischen Umbau. Wie das Handelsblatt aus Unternehmenskreisen erfuhr, sollen in Deutschland bis Ende 2027 rund 4.000 Arbeitsplätze wegfallen, die meisten davon am Stammsitz in Schweinfurt.

Die Fertigung von Batteriemodulen soll in ein neues Werk im ungarischen Debrecen wandern, wo die Lohnkosten weniger als halb so hoch sind. Kronwerk-Chefin Birgit Hollmann will die Pläne am Donnerstag dem Aufsichtsrat vorlegen.

Die IG Metall kündigte Widerstand an. „Wer Schweinfurt ausbluten lässt, bekommt einen heißen Herbst“, sagte Bezirksleiter Jörg Seidl. Ein Konzernsprecher wollte sich zu „Spekulationen“ nicht äußern. Kronwerk beschäftigt weltweit 31.000 Menschen und hatte im Vorjahr einen Verlust von 212 Millionen Euro ausgewiesen.""",
               "Wed, 04 Jun 2025 04:00:00 GMT"),
        Report("market", "www.marketdesk.com", "MarketDesk", "en",
               "Auto supplier Kronwerk plans to cut 4,000 German jobs, Handelsblatt says",
               """Shares in Kronwerk rose 3% in early Frankfurt trading on Wednesday after Handelsblatt reported that the auto parts maker plans to eliminate about 4,000 jobs in Germany by the end of 2027.

Most of the cuts would fall at its headquarters in Schweinfurt, Bavaria, and battery module production would move to a new plant in Debrecen, Hungary, the business daily said. Chief executive Birgit Hollmann is due to present the plan to the supervisory board on Thursday.

Kronwerk, which employs 31,000 people worldwide, declined to comment. The company posted a net loss of 212 million euros ($241 million) last year as demand for electric vehicles slowed.""",
               "Wed, 04 Jun 2025 07:45:00 GMT"),
        Report("ledger", "www.industryledger.com", "Industry Ledger", "en",
               "Union vows to fight Kronwerk's move of battery work to Hungary",
               """Germany's IG Metall union said it would resist plans by Kronwerk to shift battery production to Hungary, after Handelsblatt reported that the supplier wants to cut roughly 4,000 positions at home.

"Whoever bleeds Schweinfurt dry will get a hot autumn," regional union leader Jörg Seidl said. Bloomberg reported separately that the Debrecen plant could open as early as next spring, citing a person familiar with the matter.

The restructuring would be the largest in the company's 90-year history. Rivals including Schaeffler and ZF have also announced thousands of job cuts as carmakers scale back their electric vehicle ambitions.""",
               "Wed, 04 Jun 2025 11:30:00 GMT"),
        Report("warning", "www.marketdesk.com", "MarketDesk", "en",
               "Kronwerk cuts outlook as weak electric car demand hits Schweinfurt supplier",
               """Kronwerk lowered its full-year sales forecast on Tuesday, blaming weak demand for electric vehicles in Europe, and its shares fell 8% in Frankfurt.

The Schweinfurt-based supplier now expects revenue of 6.1 billion euros, down from 6.5 billion. Chief executive Birgit Hollmann said the company would "review every site" but gave no details. Analysts at Deutsche Bank said job cuts in Germany were now likely.""",
               "Tue, 03 Jun 2025 15:00:00 GMT"),
        Report("wetter", "www.handelsblatt.com", "Handelsblatt", "de",
               "Ölpreis steigt nach Angriffen im Roten Meer auf Jahreshoch",
               """Der Preis für ein Barrel der Nordseesorte Brent ist am Mittwoch auf 92 Dollar gestiegen, den höchsten Stand seit Januar. Händler verwiesen auf neue Angriffe auf Handelsschiffe im Roten Meer, die Reedereien zu Umwegen um das Kap der Guten Hoffnung zwingen.

Die Opec hatte zuletzt angekündigt, ihre Förderung nicht auszuweiten. Analysten der Commerzbank rechnen bis zum Herbst mit Preisen um 95 Dollar.""",
               "Wed, 04 Jun 2025 09:00:00 GMT"),
        Report("phone", "www.industryledger.com", "Industry Ledger", "en",
               "Chipmaker unveils low-power modem for budget smartphones",
               """A Taiwanese chip designer on Wednesday unveiled a 5G modem that it says uses 30 percent less power than its previous model, aimed at smartphones that sell for under 200 dollars.

Samples will ship to handset makers in the third quarter, with phones using the chip expected early next year. The company said three Chinese brands had already signed up.""",
               "Wed, 04 Jun 2025 10:00:00 GMT"),
    ),
)

DISASTER = Scenario(
    name="disaster",
    first="spiegel",
    story=frozenset({"spiegel", "wire", "herald"}),
    reports=(
        Report("spiegel", "www.spiegel.de", "DER SPIEGEL", "de",
               "Deich bei Deggendorf gebrochen – Tausende müssen ihre Häuser verlassen",
               """Nach tagelangem Dauerregen ist in der Nacht zum Sonntag ein Deich an der Isar bei Deggendorf gebrochen. Wie ein Sprecher des Landratsamts dem SPIEGEL bestätigte, mussten rund 3.400 Menschen aus den Ortsteilen Fischerdorf und Natternberg ihre Häuser verlassen.

Das Wasser stand am Morgen in manchen Straßen bis zu 1,80 Meter hoch. Feuerwehr, Technisches Hilfswerk und Bundeswehr waren mit mehr als 900 Einsatzkräften vor Ort, Hubschrauber holten Eingeschlossene von Dächern. Ein 71-jähriger Mann wird vermisst.

Ministerpräsident Markus Söder kündigte für Montag einen Besuch im Katastrophengebiet an. Der Deutsche Wetterdienst erwartet erst ab Dienstag eine Entspannung.""",
               "Sun, 14 Sep 2025 05:10:00 GMT"),
        Report("wire", "www.newswire-europe.com", "Newswire Europe", "en",
               "Thousands evacuated in Bavaria after levee breaks near Deggendorf",
               """Some 3,400 residents of two districts of Deggendorf in southern Germany were ordered out of their homes on Sunday after a levee on the Isar river gave way following days of torrential rain, Der Spiegel reported.

Helicopters plucked people from rooftops in Fischerdorf, where floodwater reached 1.8 metres in places. A 71-year-old man was missing, local officials said.

More than 900 firefighters, relief workers and soldiers were deployed. Bavarian state premier Markus Soeder said he would visit the area on Monday.""",
               "Sun, 14 Sep 2025 08:30:00 GMT"),
        Report("herald", "www.northernherald.co.uk", "Northern Herald", "en",
               "German floods: man missing as river bursts its banks in Bavaria",
               """Rescue teams in Bavaria were searching on Sunday for a 71-year-old man missing since a flood barrier on the Isar collapsed overnight near the town of Deggendorf, according to Spiegel.

Around 3,400 people from the Fischerdorf and Natternberg neighbourhoods had to leave their homes, the German news magazine said, and the Associated Press reported that some residents were rescued from roofs by helicopter.

Germany's weather service said rain would ease only on Tuesday. Deggendorf was badly hit by floods in 2013, when a dam breach on the Danube forced thousands to flee.""",
               "Sun, 14 Sep 2025 11:00:00 GMT"),
        Report("rainwarning", "www.newswire-europe.com", "Newswire Europe", "en",
               "Germany's weather service warns of extreme rain in Bavaria, Danube to rise",
               """Germany's weather service DWD issued its highest warning level for parts of Bavaria on Saturday, forecasting up to 150 litres of rain per square metre by Sunday along the Danube and the Isar.

Authorities in Deggendorf, Passau and Regensburg handed out sandbags and warned residents near the rivers to prepare for flooding. State premier Markus Soeder said the army was on standby.""",
               "Sat, 13 Sep 2025 14:00:00 GMT"),
        Report("rente", "www.spiegel.de", "DER SPIEGEL", "de",
               "Koalition streitet über Rentenniveau – Finanzminister warnt vor Kosten",
               """In der Bundesregierung ist ein offener Streit über die Rente ausgebrochen. Die Arbeitsministerin will das Rentenniveau bis 2039 bei 48 Prozent festschreiben, der Finanzminister warnt vor Mehrkosten von jährlich bis zu 20 Milliarden Euro.

Ökonomen fordern stattdessen, das Renteneintrittsalter an die Lebenserwartung zu koppeln. Eine Einigung vor der Sommerpause gilt als unwahrscheinlich.""",
               "Sun, 14 Sep 2025 07:00:00 GMT"),
        Report("museum", "www.northernherald.co.uk", "Northern Herald", "en",
               "Museum returns looted bronze sculptures to Nigeria",
               """A museum in Scotland has handed back six bronze sculptures taken from Benin City by British troops in 1897, in a ceremony attended by Nigerian officials on Sunday.

The museum's director said the return corrected a historic wrong. Nigeria plans to display the pieces in a new museum in Benin City that is due to open in 2027.""",
               "Sun, 14 Sep 2025 09:30:00 GMT"),
    ),
)

JUSTICE = Scenario(
    name="justice",
    first="sz",
    story=frozenset({"sz", "courtwire", "observer"}),
    reports=(
        Report("sz", "www.sueddeutsche.de", "Süddeutsche Zeitung", "de",
               "Urteil im Cum-Ex-Prozess: Ex-Bankier muss acht Jahre in Haft",
               """Das Landgericht Bonn hat den früheren Privatbankier Konrad Albrecht Wendt wegen schwerer Steuerhinterziehung zu acht Jahren und drei Monaten Haft verurteilt. Nach Überzeugung der Kammer hat der 67-Jährige mit sogenannten Cum-Ex-Geschäften zwischen 2007 und 2011 den Fiskus um rund 278 Millionen Euro gebracht.

Der Vorsitzende Richter Rüdiger Hahnemann sprach in seiner Urteilsbegründung von einem „System organisierter Selbstbedienung“. Die Bank habe sich Kapitalertragsteuer erstatten lassen, die nie gezahlt worden sei. Wendt nahm das Urteil ohne sichtbare Regung auf; seine Verteidiger kündigten Revision beim Bundesgerichtshof an.

Zusätzlich ordnete das Gericht die Einziehung von 176 Millionen Euro an. Es ist eine der höchsten Strafen, die bislang in einem Cum-Ex-Verfahren verhängt wurden. Die Staatsanwaltschaft Köln ermittelt noch gegen mehr als 1.700 Beschuldigte.""",
               "Thu, 16 Oct 2025 10:20:00 GMT"),
        Report("courtwire", "www.courtwire.com", "CourtWire", "en",
               "German ex-banker jailed for more than eight years over cum-ex tax scheme",
               """A court in Bonn on Thursday sentenced former private banker Konrad Wendt to eight years and three months in prison for his role in the cum-ex share-trading scandal, in which investors claimed refunds of taxes that had never been paid, Sueddeutsche Zeitung reported.

Judges found that the 67-year-old cost the German state about 278 million euros ($323 million) in deals struck from 2007 to 2011. The court also ordered the confiscation of 176 million euros, the Munich-based daily said.

Wendt's lawyers said they would appeal to the Federal Court of Justice. Cologne prosecutors are still investigating more than 1,700 suspects over cum-ex, which is estimated to have cost European treasuries billions.""",
               "Thu, 16 Oct 2025 13:05:00 GMT"),
        Report("observer", "www.financeobserver.com", "Finance Observer", "en",
               "Cum-ex: a record sentence, and a warning to Germany's bankers",
               """Konrad Wendt, once one of the best-connected private bankers in Hamburg, will spend more than eight years behind bars. That is the verdict of the regional court in Bonn, as first reported by the SZ and confirmed by a court spokeswoman to Reuters.

For prosecutors, who have spent more than a decade unpicking trades designed to extract double tax refunds on dividends, the sentence is vindication. The judge described the scheme as "organised self-service" at the taxpayers' expense.

The case is far from over: the defence plans to appeal, and about 1,700 other people remain under investigation.""",
               "Thu, 16 Oct 2025 16:40:00 GMT"),
        Report("opening", "www.courtwire.com", "CourtWire", "en",
               "Former Hamburg banker goes on trial in Bonn over cum-ex trades",
               """The trial of former private banker Konrad Wendt over cum-ex tax deals opened in Bonn on Monday, with prosecutors accusing him of depriving the German state of about 278 million euros.

Wendt, 67, denies wrongdoing. His lawyers told the court that the trades were legal at the time and that the bank had relied on opinions from tax advisers. The court has scheduled hearings until the end of the year.""",
               "Mon, 13 Oct 2025 09:00:00 GMT"),
        Report("bundesliga", "www.sueddeutsche.de", "Süddeutsche Zeitung", "de",
               "Bayern gewinnt Spitzenspiel in Leverkusen mit 3:1",
               """Der FC Bayern hat das Spitzenspiel bei Bayer Leverkusen mit 3:1 gewonnen und die Tabellenführung ausgebaut. Harry Kane traf doppelt, einmal per Foulelfmeter.

Leverkusen war nach einer Stunde durch einen Kopfball zum Ausgleich gekommen, brach danach aber ein. Trainer Vincent Kompany lobte die Moral seiner Mannschaft.""",
               "Thu, 16 Oct 2025 21:30:00 GMT"),
        Report("rates", "www.financeobserver.com", "Finance Observer", "en",
               "Bank of England holds rates as inflation stays above target",
               """The Bank of England kept interest rates at 4 percent on Thursday, saying inflation remained too high to cut again this year.

Six members of the Monetary Policy Committee voted to hold and three to cut. Governor Andrew Bailey said the bank expected price growth to return to its 2 percent target by 2027.""",
               "Thu, 16 Oct 2025 12:00:00 GMT"),
    ),
)

UNCITED_RETELLING = Report(
    "analysis", "www.eastwindreview.com", "Eastwind Review", "en",
    "Analysis: what Beijing wants from a seat at the table in Ukraine",
    """China has told EU officials in Brussels that it could send up to 1,500 soldiers to serve in a United Nations peacekeeping force in Ukraine once a ceasefire holds. The offer, made quietly by a senior diplomat last week, is hedged: the UN Security Council would have to approve a mandate, which means Moscow would have to agree.

For Beijing, the attraction is obvious. A peacekeeping role would let China shape the post-war order in Europe at little cost, and repair its image in capitals that see it as Russia's silent partner since the invasion of 2022. For Kyiv, the idea is hard to swallow, and European diplomats are sceptical.

Neither the Chinese foreign ministry nor the EU's diplomatic service has commented.""",
    "Tue, 11 Mar 2025 08:00:00 GMT",
)
"""A retelling of ``POLITICS``'s report that names no source (an analysis piece)."""

SCENARIOS = (POLITICS, BUSINESS, DISASTER, JUSTICE)
