"""Text as people read it: the forms identities and tags are compared in.

Two strings that a reader cannot tell apart must not name two accounts or two
tags. Unicode gives one text several spellings: fullwidth ``a`` (U+FF41) and ``a``,
``é`` precomposed (NFC) and as ``e`` plus a combining accent (NFD), ``ﬁ`` and
``fi``. NFKC (Unicode Standard Annex #15) folds each of these to one spelling;
case folding (Unicode chapter 3.13, ``str.casefold``) then makes ``Kay``,
``KAY`` and ``kay`` one name. The folding is applied for comparison only: what
the user typed is what is stored and shown.

Some characters show nothing at all: format characters (category Cf, U+200B),
and the rest of Unicode's Default_Ignorable_Code_Point property (Unicode
chapter 5.21: the Hangul fillers U+3164 and U+115F, the combining grapheme
joiner U+034F, variation selectors…), plus the blank Braille pattern U+2800.
They are no part of a name, a tag or text that is required to say something.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import regex

_INVISIBLE = regex.compile(r"[\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def identity_key(text: str) -> str:
    """The form usernames and emails are compared in: NFKC, case-folded, NFKC again.

    Case folding can undo a composition (``ǰ`` folds to ``j`` + U+030C), so the
    result is normalised once more; the key of a key is the key itself.
    """
    return nfkc(nfkc(text).casefold())


def normalize_email(email: str) -> str:
    """The email as stored and shown: trimmed and lower-cased (``identity_key`` compares)."""
    return email.strip().lower()


def is_invisible(char: str) -> bool:
    """A character that shows nothing (see the module docstring)."""
    return _INVISIBLE.match(char) is not None


def is_blank(text: str) -> bool:
    """Nothing a reader sees: empty, whitespace, or characters that show nothing only.

    Every plane (``is_invisible``); the ``not_blank`` validator matches the
    pattern published in the API's spec instead, which names the Basic
    Multilingual Plane's characters only (app/web/fields.py).
    """
    return all(char.isspace() or is_invisible(char) for char in text)


def remove_invisible_characters(text: str) -> str:
    """Drop the characters that show nothing (U+200B, U+FEFF, U+00AD, U+3164, U+034F…)."""
    return "".join(char for char in text if not is_invisible(char))


def canonical_tag(text: str) -> str:
    """A tag as readers see it: NFKC, no invisible characters, whitespace trimmed and collapsed.

    ``" python\u200b"`` (in fullwidth letters) and ``"python"`` are one tag; tags
    stay case-sensitive.
    Runs of whitespace inside become one space. An empty result means the tag
    was blank. Normalised again last: an invisible character removed from
    between a letter and its combining mark (``"e\u200b\u0301"``) leaves them to
    compose (``"é"``), so the tag of a tag is the tag itself and the filter
    finds what the popular tags list.
    """
    return nfkc(" ".join(remove_invisible_characters(nfkc(text)).split()))


def character_class(predicate_name: str) -> str:
    """A regex class body of the Basic Multilingual Plane characters ``predicate_name`` names.

    Written with ``\\uXXXX`` escapes and ranges only, so ECMA-262 (with or
    without the ``u`` flag) and Python's ``re`` read it the same way.
    """
    return _character_class(predicate_name)


_PREDICATES = {
    # Unicode letters (L*), combining marks (M*) and decimal digits (Nd) that show.
    "word": lambda char: (
        (unicodedata.category(char) == "Nd" or unicodedata.category(char)[0] in "LM")
        and not is_invisible(char)
    ),
    # Combining marks: they belong to the character before them.
    "mark": lambda char: unicodedata.category(char)[0] == "M",
    "invisible": is_invisible,
}


def _escape(code: int) -> str:
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    return f"\\u{code:04x}"


@cache
def _character_class(predicate_name: str) -> str:
    predicate = _PREDICATES[predicate_name]
    parts: list[str] = []
    start: int | None = None
    for code in range(0x10001):
        inside = code < 0x10000 and not 0xD800 <= code <= 0xDFFF and predicate(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            end = code - 1
            parts.append(_escape(start) if start == end else f"{_escape(start)}-{_escape(end)}")
            start = None
    return "".join(parts)


def ecma_anchored(body: str) -> tuple[str, re.Pattern[str]]:
    """``^body$`` to publish, and the same rule compiled for this server.

    ECMA-262's ``$`` (no ``m`` flag) matches only at the very end; Python's
    also matches before a final newline. The server's copy therefore anchors
    with ``\\A`` and ``\\Z``. ``body`` writes its own end-of-input checks as
    ``$`` and must not contain ``$`` otherwise.
    """
    published = f"^{body}$"
    server = re.compile(r"\A" + body.replace("$", r"\Z") + r"\Z")
    return published, server
