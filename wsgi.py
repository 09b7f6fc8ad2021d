"""WSGI entry point: ``gunicorn wsgi:app``."""

from app import create_app
from app.config import ConfigurationError

try:
    app = create_app()
except ConfigurationError as error:
    # One line and a non-zero exit (gunicorn, flask), not a traceback.
    raise SystemExit(f"configuration error: {error}") from None
