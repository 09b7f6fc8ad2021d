"""Tags in use."""

from app.tags.routes import blp

__all__ = ["blp"]
