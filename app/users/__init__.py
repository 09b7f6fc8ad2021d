"""Registration, login and the current user."""

from app.users.routes import blp

__all__ = ["blp"]
