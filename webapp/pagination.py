"""Page/limit query arguments and the page body shared by every list endpoint."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields, post_load, validate
from sqlalchemy import Select, func, select

from webapp.extensions import db

# page * limit must stay a valid SQL OFFSET on every database.
MAX_PAGE = 2**31 - 1


class PaginationArgsSchema(Schema):
    """``page`` (from 1) and ``limit``; a limit above PAGE_LIMIT_MAX is lowered to it."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    limit = fields.Integer(
        load_default=lambda: current_app.config["PAGE_LIMIT_DEFAULT"],
        validate=validate.Range(min=1),
        metadata={"description": "Page size; values above the configured maximum (100) are clamped."},
    )

    @post_load
    def clamp_limit(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["limit"] = min(data["limit"], current_app.config["PAGE_LIMIT_MAX"])
        return data


def page_schema(name: str, key: str, item_schema: type[Schema]) -> type[Schema]:
    """The list body: ``{page, limit, total, <key>: [...]}``."""
    return Schema.from_dict(
        {
            "page": fields.Integer(),
            "limit": fields.Integer(),
            "total": fields.Integer(),
            key: fields.List(fields.Nested(item_schema)),
        },
        name=name,
    )


def paginate(query: Select, *, key: str, page: int, limit: int, total: int | None = None) -> dict[str, Any]:
    """Run ``query`` for one page; ``total`` is counted with the query unless given."""
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(limit).offset((page - 1) * limit)).all()
    return {"page": page, "limit": limit, "total": total, key: rows}
