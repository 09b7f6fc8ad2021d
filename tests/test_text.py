"""The text rules every comparison rests on: a canonical form of a canonical form is itself.

A tag's and a name's forms are computed twice over a request's life (when stored
and when a filter looks them up); if normalising a normalised text changed it,
what one lists the other could not find.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.text import canonical_tag, identity_key

# Letters, combining marks, invisible characters and spaces, mixed: the places where
# normalisation, removal and composition interact (U+200B between "e" and U+0301,
# Hangul jamo split by U+200B, a fullwidth letter before a combining mark).
PIECES = st.sampled_from(
    [
        "e",
        "E",
        "a",
        "\u1100",
        "\u1161",
        "\u11a8",
        "\uff45",
        "\u0301",
        "\u0327",
        "\u030c",
        "\u200b",
        "\ufeff",
        "\u00ad",
        "\u3164",
        "\u034f",
        " ",
        "\u00a0",
        "\u3000",
        "\u01f0",
        "\u1e9e",
        "\ufb01",
        "\u2460",
    ]
)
MIXED_TEXT = st.lists(PIECES, max_size=12).map("".join) | st.text(max_size=20)


@settings(max_examples=400, deadline=None)
@given(MIXED_TEXT)
def test_the_tag_of_a_tag_is_the_tag_itself(text: str) -> None:
    assert canonical_tag(canonical_tag(text)) == canonical_tag(text)


@settings(max_examples=400, deadline=None)
@given(MIXED_TEXT)
def test_the_key_of_a_key_is_the_key_itself(text: str) -> None:
    assert identity_key(identity_key(text)) == identity_key(text)


def test_an_invisible_character_between_a_letter_and_its_mark_leaves_them_to_compose() -> None:
    assert canonical_tag("e\u200b\u0301") == "\u00e9"
