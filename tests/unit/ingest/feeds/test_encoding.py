"""``service.ingest.feeds.encoding``: BOM, then valid UTF-8, then HTTP charset, then XML prolog, then a guess."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from service.ingest.feeds.encoding import codec_for, declared_encodings, decode_document, to_utf8_document

FIXTURES = Path(__file__).parent / "fixtures"
TITLE = "Caf\u00e9 \u201cZeitung\u201d \u2013 5 \u20ac"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(("label", "codec"), [
    ("iso-8859-1", "cp1252"), ("ISO-8859-1", "cp1252"), ("latin1", "cp1252"), ("us-ascii", "cp1252"),
    (" UTF8 ", "utf-8"), ("gb2312", "gbk"), ("shift_jis", "cp932"), ("iso-8859-15", "iso8859-15"),
    ("koi8-r", "koi8-r"), ("no-such-charset", None), ("", None), (None, None),
])
def test_labels_take_their_whatwg_meaning(label: str | None, codec: str | None) -> None:
    assert codec_for(label) == codec


def test_declared_encodings_reads_header_and_prolog() -> None:
    body = b"  \n<?xml version='1.0' encoding='Shift_JIS'?><rss/>"
    assert declared_encodings(body, 'application/rss+xml; Charset="UTF-8"') == ("UTF-8", "Shift_JIS")
    assert declared_encodings(b"<rss/>", "text/xml") == (None, None)
    assert declared_encodings(b"<rss/>", None) == (None, None)


def test_windows_1252_labelled_latin1_keeps_quotes_and_euro() -> None:
    """ISO-8859-1 means windows-1252 on the Web: 0x80-0x9F are € “ ” –, not C1 controls."""
    text, codec = decode_document(fixture("cp1252-labelled-latin1.xml"), "application/rss+xml")
    assert codec == "cp1252"
    assert TITLE in text


def test_utf8_body_labelled_windows_1252_is_utf8() -> None:
    text, codec = decode_document(fixture("utf8-labelled-windows1252.xml"), "text/xml; charset=windows-1252")
    assert codec == "utf-8"
    assert TITLE in text


def test_bom_wins_over_header_and_prolog_and_is_removed() -> None:
    text, codec = decode_document(fixture("utf16le-bom.xml"), "text/xml; charset=iso-8859-1")
    assert codec == "utf-16-le"
    assert text.startswith("<?xml") and TITLE in text
    text, codec = decode_document(fixture("utf8-bom-labelled-latin1.xml"), "text/xml; charset=iso-8859-1")
    assert codec == "utf-8"
    assert text.startswith("<?xml") and TITLE in text


def test_utf16_big_endian_bom() -> None:
    body = codecs.BOM_UTF16_BE + "<a>\u00e9</a>".encode("utf-16-be")
    assert decode_document(body, None) == ("<a>\u00e9</a>", "utf-16-be")


def test_http_charset_wins_over_prolog() -> None:
    """RFC 7303 §3: the Content-Type charset beats the XML declaration (body not valid UTF-8)."""
    body = fixture("cp1252-labelled-latin1.xml")
    text, codec = decode_document(body, 'text/xml; charset="ISO-8859-15"')
    assert codec == "iso8859-15"
    assert "\u201c" not in text  # ISO-8859-15 has no curly quotes at 0x93


def test_prolog_used_when_header_has_no_or_an_unknown_charset() -> None:
    body = fixture("cp1252-labelled-latin1.xml")
    for content_type in (None, "application/xml", "application/xml; charset=x-unheard-of"):
        assert decode_document(body, content_type) == (body.decode("cp1252"), "cp1252")


def test_windows_1252_mislabelled_utf8_gets_replacement_characters_not_a_redecode() -> None:
    """Declared UTF-8 keeps its valid parts; bad bytes become U+FFFD (documented policy)."""
    text, codec = decode_document(fixture("cp1252-labelled-latin1.xml"), "text/xml; charset=utf-8")
    assert codec == "utf-8"
    assert "Caf\ufffd \ufffdZeitung\ufffd" in text


def test_utf16_label_without_bom_is_not_trusted() -> None:
    """A UTF-16 label on bytes without a BOM (here single-byte text) is a lie: never decoded as UTF-16."""
    body = b'<?xml version="1.0" encoding="utf-16"?><a>caf\xe9</a>'
    text, codec = decode_document(body, "text/xml; charset=utf-16")
    assert not codec.startswith("utf-16")
    assert text.startswith('<?xml version="1.0" encoding="utf-16"?><a>caf')


def test_invalid_bytes_never_raise() -> None:
    body = b"<rss>\xff\xfe\x00\xc3\x28 ok</rss>"  # not a BOM (not at the start), invalid UTF-8
    text, codec = decode_document(body, "text/xml; charset=utf-8")
    assert text.startswith("<rss>\ufffd") and text.endswith(" ok</rss>")
    assert codec == "utf-8"


def test_undeclared_legacy_text_is_guessed_as_a_single_byte_charset() -> None:
    body = ("<p>" + "L'été à la plage, les cafés et les crêpes sont très appréciés. " * 8 + "</p>").encode("cp1252")
    text, codec = decode_document(body, None)
    assert codec != "utf-8"
    assert "été" in text and "crêpes" in text and "\ufffd" not in text


def test_to_utf8_document_rewrites_the_prolog() -> None:
    body, codec = to_utf8_document(fixture("cp1252-labelled-latin1.xml"), None)
    assert codec == "cp1252"
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert TITLE in body.decode("utf-8")
    plain, _ = to_utf8_document(b"<rss>\xe2\x82\xac</rss>", None)  # no prolog: nothing to rewrite
    assert plain == b"<rss>\xe2\x82\xac</rss>"
