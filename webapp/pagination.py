"""Page/limit query arguments and the page body shared by every list endpoint (the HTTP side
of lists; the queries are in webapp/listing.py)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote, urlencode

from flask import current_app, request
from marshmallow import Schema, fields, post_load, validate

from webapp.fields import QueryInteger
from webapp.listing import MAX_PAGE, Listing, paginate

# The OpenAPI description of the Link header every list answers with.
LINK_HEADER = {
    "Link": {
        "description": "RFC 8288 links to the first, prev, next and last pages (those that exist), "
        "keeping the request's filters and limit",
        "schema": {"type": "string"},
    }
}


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


def page_of(listing: Listing, args: dict[str, Any], *, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The page ``args`` ask for, as the body ``{page, limit, total, <key>}`` and a Link header."""
    body = paginate(listing, key=key, page=args["page"], limit=args["limit"])
    return body, {"Link": links(body["page"], body["limit"], body["total"])}


def links(page: int, limit: int, total: int) -> str:
    """RFC 8288 links from this page to the first, previous, next and last ones that exist,
    with the request's other query arguments as they were sent."""
    last = max(1, math.ceil(total / limit))
    pages = {"first": 1}
    if page > 1:
        pages["prev"] = min(page - 1, last)
    if page < last:
        pages["next"] = page + 1
    pages["last"] = last
    path = quote(request.script_root + request.path)
    kept = [(name, value) for name, value in request.args.items(multi=True) if name not in ("page", "limit")]
    return ", ".join(
        f'<{path}?{urlencode([*kept, ("page", number), ("limit", limit)])}>; rel="{relation}"'
        for relation, number in pages.items()
    )
