"""A title's slug base: lowercase ASCII words joined by ``-`` (python-slugify).

Short enough to leave room in the column for the ``-<n>`` suffix that makes
it unique (``app.articles.slugs`` chooses that; the seed writes its own).
"""

from __future__ import annotations

from slugify import slugify

from app.models import SLUG_MAX_LENGTH

# Room for a "-<n>" suffix within the column.
BASE_MAX_LENGTH = SLUG_MAX_LENGTH - 12


def base_slug(title: str) -> str:
    return slugify(title, max_length=BASE_MAX_LENGTH, word_boundary=True) or "article"
