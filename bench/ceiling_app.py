"""The ceiling: a bare Flask route returning the bytes ``GET /api/articles`` returned.

Served by the same gunicorn settings as the project (``gunicorn -c
gunicorn.conf.py bench.ceiling_app:app``), it shows how fast any Flask app can
answer with that body on this machine: no database, no serialization.
"""

import os
from pathlib import Path

from flask import Flask, Response

BODY = Path(os.environ["BENCH_CEILING_BODY"]).read_bytes()

app = Flask(__name__)


@app.get("/api/articles")
def articles() -> Response:
    return Response(BODY, mimetype="application/json")
