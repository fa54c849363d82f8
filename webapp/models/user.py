"""User accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, RowMapping, String, bindparam, literal, select, update
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, CreatedAt, UTCDateTime, db, utcnow
from webapp.models.role import Role
from webapp.models.row_count import keep_count
from webapp.models.word_index import UserNameWord, name_contains, rows_with_word
from webapp.pages import PageQuery
from webapp.security import hash_password, verify_password


class User(db.Model):
    """An account; deactivated rather than deleted, so its items keep their owner."""

    __tablename__ = "users"
    __table_args__ = MYSQL_TABLE_ARGS

    USERNAME_LENGTH = 64

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    activated: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Moves on every change of the account (not on a login): the ETag, and what a
    # conditional write compares and swaps.
    version: Mapped[int] = mapped_column(server_default="1")

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_admin(self) -> bool:
        return self.role_id == Role.ADMIN

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return verify_password(password, self.password_hash)

    @classmethod
    def read_public(cls, user_id: int) -> RowMapping | None:
        """The account's public fields and version, active or not, read through Core (no
        ORM object, and never the password hash)."""
        return db.session.connection().execute(_PUBLIC_BY_ID, {"id": user_id}).mappings().first()

    @classmethod
    def search(cls, activated: bool = True, username: str | None = None) -> PageQuery:
        """Active (or deactivated) accounts by id, or those whose username contains
        ``username`` (a case-insensitive substring; ``%`` and ``_`` are literal)."""
        if username is None:
            return _EVERY_USER[activated]
        if (ids := rows_with_word(UserNameWord.user_id, username)) is not None:
            ids = ids.join(User, User.id == UserNameWord.user_id).where(User.activated == activated)
            return PageQuery.through(_LISTED.where(cls.activated == activated), ids)
        query = _LISTED.where(
            cls.activated == activated, *name_contains(cls.username, cls.id, UserNameWord.user_id, username)
        )
        return PageQuery.of(query)

    @classmethod
    def find(cls, username: str, *columns: ColumnElement, lock: bool = False) -> tuple[User | None, list]:
        """The account named exactly ``username`` (with its row locked until commit if
        ``lock``), and ``columns`` read in the same statement: a row of them comes back even
        when there is no such account.

        MySQL's collations ignore trailing spaces ("alice " = "alice"); the exact comparison
        here keeps such a name from opening, or dodging the limits of, another account.
        """
        one_row = select(literal(1).label("one")).subquery()
        query = select(cls, *columns).select_from(one_row).outerjoin(cls, cls.username == username)
        user, *values = db.session.execute(query.with_for_update() if lock else query).one()
        return (user if user is not None and user.username == username else None), values

    def record_login(self) -> None:
        """Note the login on the account's row, leaving ``updated_at`` alone (the public
        profile must not tell when someone logs in).

        Writing the row also orders logins across a Galera cluster, where the row lock that
        ``find(lock=True)`` takes holds on one node only: of two logins of one account on
        different nodes, the second to commit fails certification and is retried, and then
        sees the first one's session (the session cap holds).
        """
        db.session.execute(
            update(User).where(User.id == self.id).values(last_login_at=utcnow(), updated_at=User.updated_at),
            execution_options={"synchronize_session": False},
        )

    @property
    def is_active_admin(self) -> bool:
        return self.activated and self.is_admin

    @classmethod
    def active_admin_exists(cls) -> bool:
        """Whether any active account has the admin role (whatever it is called now)."""
        query = select(cls.id).where(cls.role_id == Role.ADMIN, cls.activated.is_(True)).limit(1)
        return db.session.scalar(query) is not None

    @classmethod
    def lock_active_admins(cls) -> list[int]:
        """The ids of the active admin accounts, their rows locked until commit.

        Called after a change that may remove an admin (flushed, so its own row counts as
        changed): of two such changes at once, the second waits for the first to commit and
        then counts what it left, so they cannot both remove the last admin. (Row locks hold
        on one server; the Galera deployment writes through one node at a time.)
        """
        query = select(cls.id).where(cls.role_id == Role.ADMIN, cls.activated.is_(True)).order_by(cls.id)
        return list(db.session.scalars(query.with_for_update()))

    @classmethod
    def active_admins_with_password(cls, password: str) -> list[User]:
        """Active admin accounts whose password is ``password`` (one bcrypt check each)."""
        admins = db.session.scalars(select(cls).where(cls.role_id == Role.ADMIN, cls.activated.is_(True)))
        return [admin for admin in admins if admin.check_password(password)]


# Statements built once. The public fields, never the hash; a list shows no version (it has
# no ETag).
_PUBLIC = (User.id, User.username, User.role_id, User.activated, User.created_at, User.updated_at)
_PUBLIC_BY_ID = select(*_PUBLIC, User.version).where(User.id == bindparam("id"))
_LISTED = select(*_PUBLIC).order_by(User.id)
# Kept counts of active and deactivated accounts: the totals of the unfiltered lists.
USER_COUNTS = keep_count(User, by=User.activated, names={True: "users.active", False: "users.inactive"})
_EVERY_USER = {
    state: PageQuery.of(_LISTED.where(User.activated == state), kept_total=USER_COUNTS.total(state))
    for state in (True, False)
}
