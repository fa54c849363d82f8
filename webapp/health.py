"""Liveness and readiness probes for the load balancer and orchestrator."""

from __future__ import annotations

from flask_smorest import abort
from marshmallow import Schema, fields
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db
from webapp.openapi import Blueprint

blp = Blueprint("health", __name__, description="Probes (no token, no X-Version)", version_gated=False)


class StatusSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


@blp.route("/healthz")
@blp.response(200, StatusSchema)
def healthz():
    """Liveness: the process answers"""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.response(200, StatusSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
def readyz():
    """Readiness: the database answers"""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        abort(503, message="Database unavailable")
    return {"status": "ready"}
