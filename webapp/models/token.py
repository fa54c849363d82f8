"""Login sessions: one access and one refresh token per session, stored as digests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ForeignKey, String, bindparam, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, CreatedAt, UTCDateTime, db, utcnow
from webapp.models.role import Role
from webapp.models.user import User
from webapp.security import new_token, token_digest


class Token(db.Model):
    """One login session of a user (one device); deleting the row ends the session."""

    __tablename__ = "tokens"
    __table_args__ = MYSQL_TABLE_ARGS
    USER_AGENT_LENGTH = 255

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_hash: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[CreatedAt]
    last_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The device's User-Agent at login (cut to the column), so its owner can tell sessions apart.
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH))

    # The plain tokens exist only in the response that hands them out (not columns), with the
    # access token's lifetime in seconds.
    access_token = None
    refresh_token = None
    expires_in = 0

    def _new_pair(self, now: datetime) -> dict[str, object]:
        """Fresh tokens on this object; returns the column values that store them. Neither
        token outlives the session (SESSION_MAX_AGE from its login)."""
        config = current_app.config
        session_ends = session_end(self.created_at)
        access_expires_at = min(now + timedelta(minutes=config["ACCESS_TOKEN_MINUTES"]), session_ends)
        self.access_token, self.refresh_token = new_token(), new_token()
        self.expires_in = int((access_expires_at - now).total_seconds())
        return {
            "access_hash": token_digest(self.access_token),
            "refresh_hash": token_digest(self.refresh_token),
            "access_expires_at": access_expires_at,
            "refresh_expires_at": min(now + timedelta(days=config["REFRESH_TOKEN_DAYS"]), session_ends),
        }

    @classmethod
    def issue(cls, user: User, user_agent: str | None = None) -> Token:
        """Open a session for ``user`` on the device ``user_agent``, ending its oldest ones
        beyond MAX_SESSIONS_PER_USER.

        The caller holds ``user``'s row lock, so concurrent logins of one account
        cannot each keep the cap's worth of sessions.
        """
        newest = (
            select(cls.id)
            .where(cls.user_id == user.id)
            .order_by(cls.id.desc())
            .limit(current_app.config["MAX_SESSIONS_PER_USER"] - 1)
            .subquery()
        )
        db.session.execute(
            delete(cls).where(cls.user_id == user.id, cls.id.not_in(select(newest.c.id))),
            execution_options={"synchronize_session": False},
        )
        now = utcnow()
        user_agent = user_agent[: cls.USER_AGENT_LENGTH] if user_agent else None
        token = cls(user_id=user.id, user_agent=user_agent, created_at=now)
        for column, value in token._new_pair(now).items():
            setattr(token, column, value)
        db.session.add(token)
        return token

    @classmethod
    def find_caller(cls, access_token: str) -> Caller | None:
        """Who holds this access token, if its session is live and its account active."""
        row = (
            db.session.connection()
            .execute(_CALLER_BY_ACCESS_HASH, {"digest": token_digest(access_token)})
            .first()
        )
        if row is None or not row.activated:
            return None
        now = utcnow()
        # The session's own end too: SESSION_MAX_AGE may have been lowered since it was issued.
        if row.access_expires_at <= now or session_end(row.created_at) <= now:
            return None
        return Caller(id=row.user_id, role_id=row.role_id, session_id=row.session_id)

    @classmethod
    def end(cls, session_id: int, *, user_id: int | None = None) -> bool:
        """End one session (of ``user_id`` only, if given); whether there was one to end."""
        query = delete(cls).where(cls.id == session_id)
        if user_id is not None:
            query = query.where(cls.user_id == user_id)
        return bool(db.session.execute(query, execution_options={"synchronize_session": False}).rowcount)

    @classmethod
    def of_user(cls, user_id: int) -> list[Token]:
        """The live sessions of an account, newest first."""
        return list(
            db.session.scalars(
                select(cls)
                .where(cls.user_id == user_id, cls.refresh_expires_at > utcnow())
                .order_by(cls.created_at.desc(), cls.id.desc())
            )
        )

    @classmethod
    def rotate(cls, refresh_token: str) -> tuple[Token | None, str]:
        """Swap a session's tokens for a new pair: ``(token, "ok")``, else ``(None, why)``.

        A refresh token that was already rotated is a theft signal: its whole session ends
        (``"reuse"``). Anything else that is not a live refresh token is ``"rejected"``.
        """
        digest = token_digest(refresh_token)
        row = db.session.execute(select(cls, User).join(User).where(cls.refresh_hash == digest)).first()
        if row is None:
            retired = db.session.get(RetiredRefreshToken, digest)
            if retired is not None:
                current_app.logger.warning("refresh token reuse: session %s revoked", retired.token_id)
                db.session.execute(delete(cls).where(cls.id == retired.token_id))
                return None, "reuse"
            return None, "rejected"
        token, user = row
        now = utcnow()
        if token.refresh_expires_at <= now or session_end(token.created_at) <= now or not user.activated:
            return None, "rejected"
        values = {**token._new_pair(now), "last_refreshed_at": now}
        # Compare-and-swap: of two requests presenting the same token at once, one wins.
        swapped = db.session.execute(
            update(cls).where(cls.id == token.id, cls.refresh_hash == digest).values(values),
            execution_options={"synchronize_session": False},
        ).rowcount
        if not swapped:
            db.session.execute(delete(cls).where(cls.id == token.id))
            return None, "reuse"
        db.session.add(
            RetiredRefreshToken(digest=digest, token_id=token.id, expires_at=token.refresh_expires_at)
        )
        return token, "ok"

    @classmethod
    def revoke_all(cls, user_id: int, *, keep: int | None = None) -> None:
        """End every session of a user, except session ``keep``."""
        query = delete(cls).where(cls.user_id == user_id)
        if keep is not None:
            query = query.where(cls.id != keep)
        db.session.execute(query, execution_options={"synchronize_session": False})

    @classmethod
    def purge_expired(cls) -> int:
        """Delete sessions whose refresh token has expired; returns how many. (A session past
        SESSION_MAX_AGE has: no refresh token outlives its session. One issued before the
        setting was lowered is refused at once and purged when its refresh token expires.)"""
        now = utcnow()
        db.session.execute(delete(RetiredRefreshToken).where(RetiredRefreshToken.expires_at <= now))
        return db.session.execute(delete(cls).where(cls.refresh_expires_at <= now)).rowcount


class RetiredRefreshToken(db.Model):
    """A refresh token already swapped for a new pair, kept to recognise its reuse."""

    __tablename__ = "retired_refresh_tokens"
    __table_args__ = MYSQL_TABLE_ARGS

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def session_end(created_at: datetime) -> datetime:
    """When a session opened at ``created_at`` ends, however often it is refreshed."""
    return created_at + timedelta(seconds=current_app.config["SESSION_MAX_AGE"])


@dataclass(frozen=True, slots=True)
class Caller:
    """The account behind a request's access token, as permissions see it."""

    id: int
    role_id: int
    session_id: int

    @property
    def is_admin(self) -> bool:
        return self.role_id == Role.ADMIN


# Built once, and read through Core with just the columns permissions need: this runs on
# every authenticated request, where building the statement, loading ORM objects and the
# driver parsing each column's description would cost more than the query itself.
_CALLER_BY_ACCESS_HASH = (
    select(
        Token.id.label("session_id"),
        Token.access_expires_at,
        Token.created_at,
        User.id.label("user_id"),
        User.role_id,
        User.activated,
    )
    .join(User)
    .where(Token.access_hash == bindparam("digest"))
)
