"""Extension objects, created unbound and bound to an app in ``create_app``.

Nothing here connects, listens or starts a thread: gunicorn starts the scheduler in
each worker (docker/gunicorn.conf.py) and serves the metrics from its master. The models'
``db`` lives in webapp/database.py, apart from anything HTTP; it is bound here with the rest.
"""

from flask_apscheduler import APScheduler
from flask_migrate import Migrate

from webapp.database import db
from webapp.deploy_lock import migrated_name
from webapp.metrics import Metrics
from webapp.openapi import Api

migrate = Migrate(render_as_batch=True, compare_type=True, include_name=migrated_name)
api = Api()
scheduler = APScheduler()
metrics = Metrics()

__all__ = ["api", "db", "metrics", "migrate", "scheduler"]
