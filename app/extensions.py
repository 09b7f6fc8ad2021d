"""Extension singletons, created unbound and initialised by ``create_app``.

The database, migrations and CORS only: the flask-smorest ``api`` is HTTP
plumbing and lives in ``app.web.api``, so ``from app.extensions import db``
loads no web stack.
"""

from flask_cors import CORS
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app.models import Base

db = SQLAlchemy(model_class=Base)
# Autogenerate's comparisons (also the gate's, app.db.gate): server defaults are off by
# default in Alembic; docs/migrations.md lists what it cannot compare reliably.
migrate = Migrate(compare_type=True, compare_server_default=True, render_as_batch=True)
cors = CORS()
