"""Failed authentication attempts, counted per account and per client address."""

from __future__ import annotations

from sqlalchemy import BigInteger, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, db


class AuthFailure(db.Model):
    """Failures of one key in one time window; every worker and instance counts here."""

    __tablename__ = "auth_failures"
    __table_args__ = MYSQL_TABLE_ARGS

    # SHA-256 of "scope:value": fixed width, and no address or username stored in clear.
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The cluster node that counted them (0 on a single server): nodes never share a row.
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False, default=0)
    failures: Mapped[int] = mapped_column(default=0)
