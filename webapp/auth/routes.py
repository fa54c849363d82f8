"""Login, token refresh, logout and the caller's own account."""

from __future__ import annotations

from flask import g, request
from flask.views import MethodView
from flask_smorest import abort

from webapp import ratelimit
from webapp.auth.schemas import LoginSchema, RefreshSchema, SessionSchema, TokenSchema
from webapp.conditional import with_etag
from webapp.database import db
from webapp.fields import MessageSchema
from webapp.headers import no_store
from webapp.metrics import LOGINS, REFRESHES
from webapp.models import Token, User
from webapp.openapi import Blueprint
from webapp.permissions import login_required
from webapp.security import needs_rehash
from webapp.users.schemas import UserSchema

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Sessions and tokens")
blp.after_request(no_store)


def _token_pair(token: Token) -> dict:
    return {
        "id": token.user_id,
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "expires": token.expires_in,
        "token_type": "bearer",
    }


def _reject(message: str):
    abort(401, message=message, headers={"WWW-Authenticate": "Bearer"})


@blp.route("/token", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def login(credentials):
    """Login

    Opens a session (one device) with an access and a refresh token. An account keeps at
    most MAX_SESSIONS_PER_USER sessions; a new login ends the oldest. Too many failures for
    an account or from an address are answered 429 until the window passes."""
    # The account's row stays locked until commit (and is written: see User.record_login):
    # logins of one account queue, so the session cap holds under races.
    user = ratelimit.check_login(credentials["username"], credentials["password"], lock=True)
    if user is None:
        LOGINS.labels("failed").inc()
        _reject("Incorrect username or password")
    if needs_rehash(user.password_hash):
        user.set_password(credentials["password"])
    user.record_login()
    token = Token.issue(user, request.headers.get("User-Agent"))
    db.session.commit()
    LOGINS.labels("ok").inc()
    return _token_pair(token)


@blp.route("/refresh", methods=["POST"])
@blp.arguments(RefreshSchema)
@blp.response(200, TokenSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def refresh(data):
    """Refresh the tokens

    Swaps the session's tokens for a new pair; the old pair stops working at once.
    Presenting a refresh token that was already swapped ends the whole session."""
    limits = ratelimit.address_only()
    ratelimit.check(limits)
    token, outcome = Token.rotate(data["refresh_token"])
    if token is None:
        ratelimit.record_failure(limits)
    db.session.commit()
    REFRESHES.labels(outcome).inc()
    if token is None:
        _reject("Invalid or expired refresh token")
    return _token_pair(token)


@blp.route("/me")
class Me(MethodView):
    @login_required
    @blp.response(200, UserSchema)
    @with_etag
    def get(self):
        """Get my account

        With its ETag; If-None-Match naming it is answered 304 with no body."""
        return User.read_public(g.caller.id)


@blp.route("/logout", methods=["POST"])
@login_required
@blp.response(200, MessageSchema)
def logout():
    """Logout

    Ends the session of the access token used for this request."""
    Token.end(g.caller.session_id)
    db.session.commit()
    return {"detail": "Logged out"}


@blp.route("/sessions")
@login_required
@blp.response(200, SessionSchema(many=True))
def sessions():
    """List my sessions

    The caller's live sessions (devices), newest first; ``current`` marks the one of the
    token used. No token or digest is ever shown."""
    return Token.of_user(g.caller.id)


@blp.route("/sessions/<id:session_id>", methods=["DELETE"])
@login_required
@blp.response(200, MessageSchema)
def end_session(session_id):
    """End my session

    One of the caller's sessions, by id: its tokens stop working at once (sign out a lost
    device). Another account's session is not found."""
    if not Token.end(session_id, user_id=g.caller.id):
        abort(404, message="Session not found")
    db.session.commit()
    return {"detail": "Session ended"}
