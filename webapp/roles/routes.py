"""Roles: the fixed list permissions are decided on."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from webapp.cache import cached
from webapp.models import Role
from webapp.openapi import Blueprint
from webapp.roles.schemas import RoleSchema

blp = Blueprint("roles", __name__, url_prefix="/roles", description="Roles (admin, user)")


@blp.route("")
class Roles(MethodView):
    @blp.response(200, RoleSchema(many=True))
    def get(self):
        """List roles

        The fixed roles permissions are decided on: 1 admin, 2 user. Needs no token."""
        # Dumped by the schema once per cache period, not per request: a ready response
        # passes through flask-smorest as it is.
        body = cached("roles_dumped", lambda: RoleSchema(many=True).dump(Role.all_cached()))
        return current_app.json.response(body)


@blp.route("/<id:role_id>")
class RolesById(MethodView):
    @blp.response(200, RoleSchema)
    def get(self, role_id):
        """Get a role

        One of the fixed roles, by id. Needs no token."""
        for role in Role.all_cached():
            if role["id"] == role_id:
                return role
        abort(404, message="Role not found")
