"""Extension singletons, created unbound and initialised by ``create_app``."""

from flask_cors import CORS
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app.models import Base
from app.web.api import ConduitApi

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
api = ConduitApi()
cors = CORS()
