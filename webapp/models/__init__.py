"""The database models; importing this package registers every table on the metadata."""

from webapp.models.auth_failure import AuthFailure
from webapp.models.item import Item
from webapp.models.job_run import JobRun
from webapp.models.role import Role
from webapp.models.row_count import RowCount
from webapp.models.token import RetiredRefreshToken, Token
from webapp.models.user import User
from webapp.models.version import Version

__all__ = [
    "AuthFailure",
    "Item",
    "JobRun",
    "RetiredRefreshToken",
    "Role",
    "RowCount",
    "Token",
    "User",
    "Version",
]
