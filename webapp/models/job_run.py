"""Claims on scheduled job runs, shared by every worker and instance through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.database import MYSQL_TABLE_ARGS, UTCDateTime, db, utcnow


class JobRun(db.Model):
    """One run of a job in one time slot; the primary key lets only one worker claim a slot."""

    __tablename__ = "job_runs"
    __table_args__ = MYSQL_TABLE_ARGS

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    rows: Mapped[int | None]
