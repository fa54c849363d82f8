"""Page/limit query arguments and the page body shared by every list endpoint (the HTTP side
of lists; the queries are in webapp/listing.py)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields, post_load, validate

from webapp.fields import QueryInteger
from webapp.listing import MAX_PAGE


class PaginationArgsSchema(Schema):
    """``page`` (from 1) and ``limit``; a limit above PAGE_LIMIT_MAX is lowered to it."""

    page = QueryInteger(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    limit = QueryInteger(
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
