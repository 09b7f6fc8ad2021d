"""Articles, the feed and favorites."""

from app.articles.routes import blp, favorites_blp

blueprints = (blp, favorites_blp)

__all__ = ["blp", "blueprints", "favorites_blp"]
