"""The database models; importing this package registers every table on the metadata, the
tables of models added as modules here included (no line to add for them: import a new model
from its own module, ``from webapp.models.tag import Tag``)."""

import importlib
import pkgutil

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

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
