"""Extension singletons, created unbound and initialised by ``create_app``.

The database, migrations and CORS only: the flask-smorest ``api`` is HTTP
plumbing and lives in ``app.web.api``, so ``from app.extensions import db``
loads no web stack.
"""

from typing import Any

from flask import current_app, has_app_context
from flask_cors import CORS
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session

from app.models import Base

# The app's read replicas (app/data/replicas.py), when ``DATABASE_REPLICA_URLS`` names any.
REPLICAS_EXTENSION = "database_replicas"


class RoutingSession(Session):
    """A session that reads from a replica when the request's router chose one.

    SQLAlchemy's documented way to send statements to several databases
    ("Custom Vertical Partitioning": override ``Session.get_bind``). The
    router (``app.extensions[REPLICAS_EXTENSION]``, app/data/replicas.py)
    answers ``None`` outside safe requests; then, and without replicas, the
    bind is Flask-SQLAlchemy's usual one (the primary).
    """

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any):
        if bind is None and has_app_context():
            router = current_app.extensions.get(REPLICAS_EXTENSION)
            if router is not None:
                engine = router.engine_for_request()
                if engine is not None:
                    return engine
        return super().get_bind(mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
# Autogenerate's comparisons (also the gate's, app.db.gate): server defaults are off by
# default in Alembic; docs/migrations.md lists what it cannot compare reliably.
migrate = Migrate(compare_type=True, compare_server_default=True, render_as_batch=True)
cors = CORS()
