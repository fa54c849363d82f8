"""User accounts."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import ColumnElement, ForeignKey, String, literal, select, update
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, UTCDateTime, utcnow
from webapp.extensions import db
from webapp.listing import Listing
from webapp.models.role import Role
from webapp.models.row_count import KeptCount, keep_count
from webapp.security import hash_password, verify_password


class User(db.Model):
    """An account; deactivated rather than deleted, so its items keep their owner."""

    __tablename__ = "users"
    USERNAME_LENGTH = 64
    COUNTS: ClassVar[KeptCount]  # kept counts of active and deactivated accounts (set below)
    LISTINGS: ClassVar[dict[bool, Listing]]  # public fields by activated
    __table_args__ = MYSQL_TABLE_ARGS

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    activated: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
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
    def public(cls):
        """A select of the public fields, for reads that answer them (Core rows, no hash read)."""
        return select(
            cls.id, cls.username, cls.role_id, cls.activated, cls.created_at, cls.updated_at, cls.version
        )

    @classmethod
    def listing(cls, activated: bool):
        """A select of the public fields of active (or deactivated) accounts, by id (no
        version: a list has no ETag)."""
        columns = (cls.id, cls.username, cls.role_id, cls.activated, cls.created_at, cls.updated_at)
        return select(*columns).where(cls.activated == activated).order_by(cls.id)

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

    def is_owned_by(self, user: User) -> bool:
        """An account belongs to itself."""
        return self.id == user.id


User.COUNTS = keep_count(User, by=User.activated, names={True: "users.active", False: "users.inactive"})

# Built once (read on every unfiltered list of users).
User.LISTINGS = {
    activated: Listing.of(User.listing(activated), kept_total=User.COUNTS.total(activated))
    for activated in (True, False)
}
