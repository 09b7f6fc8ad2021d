"""Comments on articles."""

from app.comments.routes import blp

__all__ = ["blp"]
