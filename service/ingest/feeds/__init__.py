"""Feed documents, in the order they are read: bytes to text (``encoding``), RSS/Atom/RDF through
feedparser and JSON Feed (``parser``, ``jsonfeed``), dates (``dates``), entries and their keys
(``entries``), HTML from feeds made safe (``sanitize``); finding a site's feed (``discovery``) and
OPML subscription lists (``opml``). Pure functions over bytes: no network, no database."""
