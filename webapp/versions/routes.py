"""Client versions, readable by any client (never gated, so an outdated one can find out)."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from webapp.database import db
from webapp.models import Version
from webapp.openapi import Blueprint
from webapp.versions.schemas import VersionSchema

blp = Blueprint(
    "versions", __name__, url_prefix="/versions", description="Client versions", version_gated=False
)


@blp.route("")
class Versions(MethodView):
    @blp.response(200, VersionSchema(many=True))
    def get(self):
        """List client versions

        Every X-Version the API knows: whether it is supported, and when it was deprecated
        or has its sunset (answered 426 from then on). Needs no token and no X-Version."""
        return db.session.scalars(select(Version).order_by(Version.id))
