"""Users: public profiles; admins create accounts; an owner or admin changes one."""

from __future__ import annotations

from flask import after_this_request, g
from flask.views import MethodView
from flask_smorest import abort

from webapp.auth.schemas import SessionSchema
from webapp.conditional import check_if_match, with_etag
from webapp.database import db
from webapp.fields import MessageSchema
from webapp.headers import no_store
from webapp.models import Role, Token, User
from webapp.openapi import Blueprint
from webapp.pagination import LINK_HEADER, page_of
from webapp.permissions import (
    admin_required,
    directory_access,
    get_for_update,
    get_or_404,
    login_required,
    require_owner_or_admin,
)
from webapp.ratelimit import check_current_password
from webapp.security import generate_password
from webapp.users.schemas import (
    UserCreatedSchema,
    UserCreateSchema,
    UserPageSchema,
    UserQueryArgsSchema,
    UserSchema,
    UserUpdateSchema,
)

blp = Blueprint("users", __name__, url_prefix="/users", description="User accounts")


@blp.route("")
class Users(MethodView):
    @directory_access
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserPageSchema, headers=LINK_HEADER)
    def get(self, args):
        """List users

        Active accounts unless ``activated=false``; ``username`` matches a case-insensitive substring."""
        return page_of(User.search(args["activated"], args.get("username")), args, key="users")

    @admin_required
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserCreatedSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create a user

        Admin only. The answer carries the generated password; it is not shown again."""
        after_this_request(no_store)  # the answer carries the password
        password = generate_password()
        user = User(**data)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        user.password = password
        return user


@blp.route("/<id:user_id>")
class UsersById(MethodView):
    @directory_access
    @blp.response(200, UserSchema)
    @with_etag
    def get(self, user_id):
        """Get a user

        Deactivated accounts are not found. With its ETag; If-None-Match naming it is
        answered 304 with no body."""
        user = User.read_public(user_id)
        if user is None or not user["activated"]:
            abort(404, message="User not found")
        return user

    @login_required
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @with_etag
    def patch(self, data, user_id):
        """Update a user

        Admin or owner. An admin cannot change another admin; only an admin changes
        ``activated`` or grants the admin role; the last active admin cannot give up either
        (409). A new password ends the account's other sessions; changing one's own password
        also needs ``current_password`` (a wrong one is 403 and counts as a failed login).
        With If-Match, only while the account is at that version (412 otherwise, nothing
        changed)."""
        user = get_for_update(User, user_id)
        caller = g.caller
        require_owner_or_admin(user.id, "account")
        check_if_match(user.version)
        if caller.is_admin and user.is_admin and user.id != caller.id:
            abort(403, message="An admin cannot change another admin")
        if data.get("role_id") == Role.ADMIN and not caller.is_admin:
            abort(403, message="Only an admin can grant the admin role")
        if "activated" in data and not caller.is_admin:
            abort(403, message="Only an admin can activate or deactivate an account")
        was_active_admin = user.is_active_admin
        current_password = data.pop("current_password", None)
        if "password" in data:
            if user.id == caller.id:
                check_current_password(user, current_password)
            user.set_password(data.pop("password"))
            keep = caller.session_id if user.id == caller.id else None
            Token.revoke_all(user.id, keep=keep)
        if data.get("activated") is False:
            Token.revoke_all(user.id)
        user.update(data)
        if was_active_admin and not user.is_active_admin:
            _refuse_to_remove_the_last_admin()
        db.session.commit()
        return user

    @login_required
    @blp.response(200, MessageSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @with_etag
    def delete(self, user_id):
        """Deactivate a user

        Admin or owner. The account is kept (its items keep their owner) but can no longer
        log in, and every session of it ends at once. The last active admin cannot be
        deactivated (409). With If-Match, only while the account is at that version."""
        user = get_for_update(User, user_id)
        require_owner_or_admin(user.id, "account")
        check_if_match(user.version)
        if not user.activated:
            abort(404, message="User not found")
        if user.is_admin and user.id != g.caller.id:
            abort(403, message="An admin cannot deactivate another admin")
        user.activated = False
        if user.is_admin:
            _refuse_to_remove_the_last_admin()
        Token.revoke_all(user.id)
        db.session.commit()
        return {"detail": "User deactivated"}


def _refuse_to_remove_the_last_admin() -> None:
    """409 if the change made to an admin account leaves no active admin (counted under the
    remaining admins' row locks; see User.lock_active_admins)."""
    db.session.flush()
    if not User.lock_active_admins():
        abort(409, message="No active admin would be left; make another account an admin first")


def _sessions_owner(user_id: int) -> User:
    """The account ``user_id`` if the caller is an admin or that account; else 404 or 403."""
    user = get_or_404(User, user_id)
    if not (g.caller.is_admin or user.id == g.caller.id):
        abort(403, message="Only an admin or the account itself may see or end its sessions")
    return user


@blp.route("/<id:user_id>/sessions")
class UserSessions(MethodView):
    @login_required
    @blp.response(200, SessionSchema(many=True))
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self, user_id):
        """List a user's sessions

        Admin, or the account itself. The account's live sessions (devices), newest first."""
        return Token.of_user(_sessions_owner(user_id).id)

    @login_required
    @blp.response(200, MessageSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    def delete(self, user_id):
        """End a user's sessions

        All of them. Admin, or the account itself: signs it out everywhere; every token stops at once."""
        Token.revoke_all(_sessions_owner(user_id).id)
        db.session.commit()
        return {"detail": "All sessions ended"}
