"""Articles, the feed and favorites."""

from app.articles.routes import blp

__all__ = ["blp"]
