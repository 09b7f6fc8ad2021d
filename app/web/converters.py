"""The path converters of every route: what a ``<name>``, ``<int:name>`` or
``<slug:name>`` segment matches (``create_app`` installs them).

A segment no converter matches is a 404 from the router, before any view or
database sees it.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter, IntegerConverter

# Paths under /api/articles/ that are routes of their own, never slugs.
RESERVED_SLUGS = frozenset({"feed"})


class PathSegmentConverter(BaseConverter):
    """The default ``<name>`` path converter, minus NUL (which no database stores).

    A path carrying one simply matches no route: 404, not a database error.
    """

    regex = r"[^/\x00]+"


class AsciiIntegerConverter(IntegerConverter):
    """``<int:name>``: ASCII digits only.

    Werkzeug's own converter matches ``\\d``, which includes every script's
    digits (Python's ``int("٥٢٣")`` is 523, so ``DELETE …/comments/٥٢٣`` would
    delete comment 523). A path with other digits matches no route: 404.
    """

    regex = r"[0-9]+"


class ArticleSlugConverter(PathSegmentConverter):
    """``<slug:slug>``: any path segment but the reserved ones.

    Without it ``/api/articles/<slug>`` would also match ``/api/articles/feed``
    for PUT and DELETE (and advertise them in ``Allow``).
    """

    regex = r"(?!(?:" + "|".join(sorted(RESERVED_SLUGS)) + r")\Z)" + PathSegmentConverter.regex
