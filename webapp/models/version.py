"""Client versions: whether each is supported, deprecated, and until when it is served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import Date, String, select
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.http import http_date

from webapp.cache import cached
from webapp.database import MYSQL_TABLE_ARGS, UTCDateTime, db


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """How the version gate treats one client version, with its headers ready to send."""

    supported: bool
    deprecation: str | None = None  # the Deprecation header (RFC 9745): "@<unix time>"
    sunset: str | None = None  # the Sunset header (RFC 8594): an HTTP-date
    sunset_at: float | None = None  # unix time from which the version is refused

    def served(self, now: float) -> bool:
        return self.supported and (self.sunset_at is None or now < self.sunset_at)


class Version(db.Model):
    """A client version string, as sent in X-Version."""

    __tablename__ = "versions"
    __table_args__ = MYSQL_TABLE_ARGS

    LENGTH = 32

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(LENGTH), unique=True)
    supported: Mapped[bool] = mapped_column(default=True)
    # Deprecated versions are still served, with Deprecation and Sunset headers, until the
    # start (UTC) of their sunset day; from then on they are refused like unsupported ones.
    deprecated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sunset: Mapped[date | None] = mapped_column(Date())

    @property
    def sunset_at(self) -> datetime | None:
        """The moment the version stops being served."""
        return datetime.combine(self.sunset, time(), UTC) if self.sunset else None

    def lifecycle(self) -> Lifecycle:
        sunset_at = self.sunset_at
        return Lifecycle(
            supported=self.supported,
            deprecation=f"@{int(self.deprecated_at.timestamp())}" if self.deprecated_at else None,
            sunset=http_date(sunset_at) if sunset_at else None,
            sunset_at=sunset_at.timestamp() if sunset_at else None,
        )

    @staticmethod
    def table() -> dict[str, Lifecycle]:
        """Every listed version's lifecycle, from the per-worker cache."""
        return cached(
            "versions",
            lambda: {row.version: row.lifecycle() for row in db.session.scalars(select(Version))},
        )
