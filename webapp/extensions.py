"""Extension objects, created unbound and bound to an app in ``create_app``.

Nothing here connects, listens or starts a thread: gunicorn starts the scheduler in
each worker (docker/gunicorn.conf.py) and serves the metrics from its master.
"""

from flask_apscheduler import APScheduler
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from webapp.database import Base, migrated_name
from webapp.metrics import Metrics
from webapp.openapi import Api

# Objects stay loaded after commit: a request that commits and then answers needs no reload.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(render_as_batch=True, compare_type=True, include_name=migrated_name)
api = Api()
scheduler = APScheduler()
metrics = Metrics()
