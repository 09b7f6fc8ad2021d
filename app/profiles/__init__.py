"""Public profiles and follows."""

from app.profiles.routes import blp

__all__ = ["blp"]
