"""``If-Match`` on writes: a client changes what it last saw, or nothing (RFC 9110 §13.1.1).

A client that read a resource (``GET`` answered an ``ETag``, app/web/http_validators.py)
may send that tag back as ``If-Match`` with a ``PUT`` or ``DELETE``; the write
happens only if the resource's current representation still has it, else the
answer is ``412`` in the error envelope, ``{"If-Match": ["does not match the
current representation"]}``, and nothing is written. Two tabs editing one
article can then no longer overwrite each other unseen.

The rules, per RFC 9110 §13.1.1 and §13.2:

- *Which tag.* The one ``GET`` answers for the same resource *to the writer*:
  the strong tag of the body the writer would read now (``representation_etag``,
  the same hash of the same bytes). An article's body includes fields that
  depend on who reads it (``favorited``, ``author.following``); only its author
  may write to it, so the tag compared is always the one the author's own
  ``GET`` gives, and it changes only when that representation does: an edit,
  a retag, the author's profile, a favorite (``favoritesCount``).
- *Strong comparison.* A weak tag (``W/"…"``) in ``If-Match`` never matches.
- ``*`` matches any current representation; a resource that does not exist has
  none, so with ``If-Match`` (``*`` or tags) a missing resource is ``412``,
  not ``404`` (§13.1.1: the condition is false). Without ``If-Match`` it stays
  Conduit's ``404``. Checks that come first stay first (§13.2.1): ``401``
  without a valid token, ``403`` for someone else's article or comment,
  ``422`` for an invalid body.
- *No race.* The service evaluates the condition inside the write's transaction,
  after it has locked the row (``SELECT … FOR [NO KEY] UPDATE`` on PostgreSQL,
  SQLite's single writer): of two writers sending the same tag, the second finds
  the first one's result, which no longer has it, and answers ``412``. (A
  favorite only takes a key-share lock on PostgreSQL, so one may land between
  the check and the write; it changes ``favoritesCount``, which no write sets.)
- *Resources without a tag.* ``/api/user`` answers a token minted for each
  answer, so no earlier tag ever names its current representation: only ``*``
  matches it. A comment has no ``GET`` of its own: only ``*`` matches it.

- *Only entity-tags.* The field is ``*`` or a list of quoted entity-tags
  (§8.8.3: ``"…"`` or ``W/"…"``); anything else (an unquoted tag) names no
  representation and is ``412``, never read leniently as a match.
- ``If-None-Match`` on these writes (§13.1.2): ``*`` is false when the
  resource exists, and a tag is false when it matches the current one (weak
  comparison): ``412``, ``{"If-None-Match": ["matches the current
  representation"]}``, nothing written. It is evaluated after ``If-Match``
  (§13.2.2).

Writes that create (``POST``) or toggle (favorite, follow) do not evaluate
``If-Match``. ``If-Unmodified-Since`` is not evaluated on writes: the API sends
no ``Last-Modified``, and §13.1.4 has a server without a modification date
ignore it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn, cast
from urllib.request import parse_http_list

import marshmallow as ma
from flask import Response, current_app, request
from werkzeug.http import generate_etag

from app.errors import abort

HEADER = "If-Match"
MISMATCH = "does not match the current representation"
NONE_HEADER = "If-None-Match"
NONE_MATCH = "matches the current representation"
# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, in a list (§5.6.1).
_ENTITY_TAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*')

# The header as an OpenAPI parameter and the 412 as a response (components,
# app/web/api.py), for the operations that evaluate it:
# ``@blp.alt_response(412, response=RESPONSE)``, ``@blp.doc(parameters=[PARAMETER_NAME])``.
PARAMETER_NAME = "IfMatch"
PARAMETER = {
    "name": HEADER,
    "required": False,
    "description": (
        "Write only if the resource is still as read: the `ETag` its `GET` answered "
        "(strong comparison, RFC 9110 §13.1.1; a weak `W/` tag never matches), or `*` "
        "for any current representation. Otherwise 412 and nothing is written. With "
        "`If-Match`, a resource that does not exist is a 412, not a 404."
    ),
    "schema": {"type": "string"},
}
RESPONSE = "PRECONDITION_FAILED"
RESPONSE_DESCRIPTION = (
    "Precondition Failed: `If-Match` names no current representation of the resource "
    "(it changed or is gone since it was read); nothing was written. Read it again."
)


def sent() -> bool:
    """Whether the request carries ``If-Match`` (an empty one included)."""
    return HEADER in request.headers


def missing(field: str) -> NoReturn:
    """The resource does not exist: ``412`` with ``If-Match`` (§13.1.1), else ``404``."""
    if sent():
        abort(412, HEADER, MISMATCH)
    abort(404, field, "not found")


def require(current_etag: Callable[[], str | None]) -> None:
    """``412`` unless ``If-Match`` is absent, ``*`` or names the current tag, and
    ``If-None-Match`` is absent or names neither ``*`` nor the current tag.

    ``current_etag`` gives the existing resource's strong tag, unquoted
    (``None``: it has none, and only ``*`` matches); it is called only when
    tags must be compared. Call it under the row lock of the write.
    """
    if sent():
        value = request.headers[HEADER].strip()
        if value != "*":
            etag = current_etag()
            strong = [tag for weak, tag in entity_tags(value) if not weak]
            if etag is None or etag not in strong:
                abort(412, HEADER, MISMATCH)
    if NONE_HEADER in request.headers:
        value = request.headers[NONE_HEADER].strip()
        if value == "*":
            abort(412, NONE_HEADER, NONE_MATCH)
        etag = current_etag()
        if etag is not None and etag in [tag for _, tag in entity_tags(value)]:
            abort(412, NONE_HEADER, NONE_MATCH)


def entity_tags(value: str) -> list[tuple[bool, str]]:
    """``(weak, opaque tag)`` for each entity-tag of a list field; ``[]`` if it is not one.

    Strict RFC 9110 syntax, where Werkzeug's parser also takes an unquoted tag
    as a strong one: a field that is not a list of entity-tags names none.
    """
    tags: list[tuple[bool, str]] = []
    for member in parse_http_list(value):  # split at commas outside quotes
        if not member.strip():
            continue  # empty list elements are allowed (§5.6.1)
        match = _ENTITY_TAG.fullmatch(member)
        if match is None:
            return []
        tags.append((match.group(1) is not None, match.group(2)))
    return tags


def representation_etag(schema: ma.Schema, data: Any) -> str:
    """The strong tag ``GET`` answers for ``data`` dumped by ``schema``, unquoted.

    The same bytes as the view's answer (the schema's dump through the app's
    JSON provider), hashed as Werkzeug's ``Response.add_etag`` does.
    """
    response = cast(Response, current_app.json.response(schema.dump(data)))
    return generate_etag(response.get_data())
