"""Character encoding of feed documents: decide it ourselves, then hand the parser UTF-8.

Order of evidence (WHATWG Encoding Standard §4 "decode", RFC 7303 §3):

1. A byte-order mark (UTF-8, UTF-16LE/BE) wins over everything and is removed.
2. A body that is valid UTF-8 is UTF-8, whatever the header or prolog says (legacy text is almost
   never valid UTF-8; a wrong ``windows-1252`` label on UTF-8 bytes is common).
3. Otherwise the charset of the HTTP Content-Type, else the XML prolog's ``encoding``, mapped
   through the WHATWG labels (``iso-8859-1``, ``latin1`` and ``us-ascii`` mean windows-1252,
   ``gb2312`` means GBK, …). UTF-8 so declared keeps its valid parts and gets U+FFFD for bad
   bytes; it is never re-decoded as a single-byte charset.
4. Nothing declared: charset-normalizer's guess, else UTF-8 with replacement characters.

The result is re-encoded as UTF-8 with the prolog's ``encoding`` rewritten to match.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

# WHATWG label → Python codec, for the labels whose Python meaning differs from the Web's.
_WHATWG = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "iso_8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "l1": "cp1252", "cp819": "cp1252", "ibm819": "cp1252", "iso-ir-100": "cp1252", "us-ascii": "cp1252",
    "ascii": "cp1252", "ansi_x3.4-1968": "cp1252", "windows-1252": "cp1252", "x-cp1252": "cp1252",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "gb2312": "gbk", "gb_2312": "gbk", "gb_2312-80": "gbk", "csgb2312": "gbk", "chinese": "gbk", "x-gbk": "gbk",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "big5": "big5hkscs", "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
}
_PROLOG = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.S)
_PROLOG_TEXT = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._:-]+)(["'])""", re.S)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)


def codec_for(label: str | None) -> str | None:
    """The Python codec for an encoding label (WHATWG meaning), or None if unknown."""
    if not label:
        return None
    label = label.strip().lower()
    name = _WHATWG.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def declared_encodings(body: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """``(HTTP charset label, XML prolog label)``, each None when absent."""
    header = _CHARSET.search(content_type or "")
    prolog = _PROLOG.match(body[:1024])
    return (header.group(1) if header else None, prolog.group(1).decode("ascii") if prolog else None)


def decode_document(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode a feed body to text; returns ``(text, codec used)``. Never raises for bad bytes:
    undecodable bytes become U+FFFD. See the module docstring for the order of evidence."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace"), codec
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    header, prolog = declared_encodings(body, content_type)
    for label in (header, prolog):
        codec = codec_for(label)
        if codec and not codec.startswith("utf-16"):
            return body.decode(codec, errors="replace"), codec
    best = from_bytes(body[:200_000]).best()
    if best is not None and best.encoding:
        codec = codec_for(best.encoding) or "utf-8"
        return body.decode(codec, errors="replace"), codec
    return body.decode("utf-8", errors="replace"), "utf-8"


def to_utf8_document(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """``decode_document`` then re-encode as UTF-8, the XML prolog saying ``utf-8``. Returns
    ``(utf-8 bytes, codec the body was decoded with)``."""
    text, codec = decode_document(body, content_type)
    text = _PROLOG_TEXT.sub(lambda m: f"{m.group(1)}utf-8{m.group(3)}", text, count=1)
    return text.encode("utf-8"), codec
