"""Liveness and readiness probes for the load balancer and orchestrator."""

from __future__ import annotations

from flask_smorest import abort
from marshmallow import fields
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.database import db
from webapp.dialects import is_node_not_ready
from webapp.fields import ResponseSchema
from webapp.openapi import Blueprint

blp = Blueprint("health", __name__, description="Probes (no token, no X-Version)", version_gated=False)

# On MySQL and MariaDB, readiness is the server's own word. A Galera node (one with a
# provider loaded) can answer a SELECT 1 while it refuses every query that touches a table
# (error 1047): when it is cut off from the cluster's primary component, or still joining. It
# then reports wsrep_ready OFF. A server without Galera reports no provider (MariaDB) or no such variables
# (MySQL): ready, as before, whenever it answers. Status variables are read without waiting
# for the cluster (wsrep_sync_wait delays reads, not SHOW STATUS) and without a table, so the
# query works on a node in any state.
READINESS = text("SHOW STATUS WHERE Variable_name IN ('wsrep_provider_name', 'wsrep_ready')")


class StatusSchema(ResponseSchema):
    status = fields.String(metadata={"example": "ok"})


@blp.route("/healthz")
@blp.response(200, StatusSchema)
def healthz():
    """Check liveness

    The process answers: it needs no database. A load balancer restarts it when not.
    """
    return {"status": "ok"}


@blp.route("/readyz")
@blp.response(200, StatusSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
def readyz():
    """Check readiness

    The database answers and can serve the app; while it cannot, 503. On a Galera cluster,
    also that the node serves queries (wsrep_ready): it does not while it is cut off from
    the primary component or still joining.
    """
    try:
        if db.engine.dialect.name in ("mysql", "mariadb"):
            status = dict(db.session.execute(READINESS).all())
            ready = not status.get("wsrep_provider_name") or status.get("wsrep_ready") == "ON"
        else:
            db.session.execute(text("SELECT 1"))
            ready = True
    except SQLAlchemyError as error:
        # A node that is not ready refuses even a new connection: SQLAlchemy ends its setup
        # (the isolation level) with a COMMIT.
        abort(503, message="Database node not ready" if is_node_not_ready(error) else "Database unavailable")
    if not ready:
        abort(503, message="Database node not ready")
    return {"status": "ready"}
