"""Page/limit query arguments and the page body shared by every list endpoint (the HTTP side
of lists; the queries are in webapp/pages.py)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Callable, Container
from typing import Any
from urllib.parse import quote, urlencode

from flask import current_app, request
from flask_smorest import abort
from marshmallow import Schema, fields, post_load, validate

from webapp.config import Config
from webapp.fields import QueryInteger, ResponseSchema
from webapp.pages import MAX_PAGE, PageQuery, read_page

PAGING = ("page", "limit", "cursor")
CURSOR_LENGTH = 100

# A Link header longer than this is left out (the body still has page, limit and total):
# a proxy holds a response's headers in one buffer (the shipped nginx: 16 KB), and only
# filters thousands of bytes long come near it.
LINK_MAX_BYTES = 8192

# The OpenAPI description of the Link header every list answers with.
LINK_HEADER = {
    "Link": {
        "description": "RFC 8288 links to the first, prev, next and last pages (those that exist), "
        "keeping the request's filters and limit; the next page's link holds a cursor. Left out if "
        f"longer than {LINK_MAX_BYTES} bytes",
        "schema": {"type": "string"},
    }
}


class PaginationArgsSchema(Schema):
    """``page`` (from 1) and ``limit``; a limit above PAGE_LIMIT_MAX is lowered to it."""

    # No documented default: a client generated from the document would send it with
    # every cursor, which is a 400. Absent, it is page 1 (page_of).
    page = QueryInteger(
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={
            "description": "Page number, from 1 (the first page when absent); a page past the end is empty."
        },
    )
    limit = QueryInteger(
        load_default=lambda: current_app.config["PAGE_LIMIT_DEFAULT"],
        validate=validate.Range(min=1),
        metadata={
            # The shipped defaults: PAGE_LIMIT_DEFAULT and PAGE_LIMIT_MAX configure them.
            "default": Config.PAGE_LIMIT_DEFAULT,
            "description": f"Page size; values above the maximum ({Config.PAGE_LIMIT_MAX}) are clamped.",
        },
    )

    cursor = fields.String(
        validate=validate.Length(max=CURSOR_LENGTH),
        metadata={
            "description": "Where a page starts, as the `next` link gives it (with the same "
            "filters and limit, instead of page): any depth costs what page 1 costs. A cursor "
            "that is not such a link's, or of other filters or limit, is a 400."
        },
    )

    @post_load
    def clamp_limit(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["limit"] = min(data["limit"], current_app.config["PAGE_LIMIT_MAX"])
        return data


class Rows(fields.List):
    """A page's rows (mappings, as Core reads them), dumped by the item schema's own fields.

    Documented and validated as a list of the nested schema. Dumping a page is the list's
    hottest code, and marshmallow's per-value machinery most of it: a field that would hand a
    value back as it is (an int, a str, a bool, None) does so here directly, a date-time goes
    through the very function its field would call, and any other field serializes itself.
    """

    def __init__(self, item_schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(fields.Nested(item_schema), **kwargs)
        self._plan: list[tuple[str, Callable[[Any], Any]]] | None = None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if self._plan is None:
            self._plan = [
                (field.data_key or name, _dumper(field, field.attribute or name))
                for name, field in self.inner.schema.dump_fields.items()
            ]
        return [{key: dump(row) for key, dump in self._plan} for row in value]


PLAIN_FIELDS = {fields.Integer: int, fields.String: str, fields.Boolean: bool}


def _dumper(field: fields.Field, attribute: str) -> Callable[[Any], Any]:
    """How ``field`` dumps the value under ``attribute`` of a row, doing only what it would do."""
    if isinstance(field, fields.DateTime) and not isinstance(field, fields.NaiveDateTime):
        convert = field.SERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
        if convert is not None:
            return lambda row: None if (value := row[attribute]) is None else convert(value)
    plain = PLAIN_FIELDS.get(type(field))
    if plain is not None and not getattr(field, "as_string", False):
        return lambda row: (
            value
            if (value := row[attribute]) is None or type(value) is plain
            else field.serialize(attribute, row)
        )
    return lambda row: field.serialize(attribute, row)


def page_schema(name: str, key: str, item_schema: type[Schema]) -> type[Schema]:
    """The list body: ``{page, limit, total, <key>: [...]}``."""
    return ResponseSchema.from_dict(
        {
            "page": fields.Integer(),
            "limit": fields.Integer(),
            "total": fields.Integer(),
            key: Rows(item_schema),
        },
        name=name,
    )


def page_of(query: PageQuery, args: dict[str, Any], *, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The page ``args`` ask for (by its number, or by the cursor of a ``next`` link), as the
    body ``{page, limit, total, <key>}`` and a Link header."""
    kept = _kept_arguments(args)
    page, after = args.get("page", 1), None
    if "cursor" in args:
        page, after = _open_cursor(args["cursor"], args["limit"], kept)
    body = read_page(query, key=key, page=page, limit=args["limit"], after=after)
    rows = body[key]
    next_cursor = _cursor(page + 1, rows[-1]["id"], args["limit"], kept) if rows else None
    link = links(body["page"], body["limit"], body["total"], kept, next_cursor)
    return body, ({"Link": link} if len(link) <= LINK_MAX_BYTES else {})


def _kept_arguments(filters: Container[str]) -> str:
    """The request's arguments that the list knows, paging aside, as they were sent (encoded)."""
    return urlencode(
        [
            (name, value)
            for name, value in request.args.items(multi=True)
            if name in filters and name not in PAGING
        ]
    )


# A cursor is the page it starts and the last id before it, signed with the app's secret over
# the list, its filters and its limit: the server reads it back only as it wrote it.
def _signature(page: int, after: int, limit: int, kept: str) -> str:
    message = f"cursor\n{request.path}\n{kept}\n{limit}\n{page}\n{after}".encode()
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _cursor(page: int, after: int, limit: int, kept: str) -> str:
    position = base64.urlsafe_b64encode(f"{page}.{after}".encode()).rstrip(b"=").decode()
    return f"{position}.{_signature(page, after, limit, kept)}"


def _open_cursor(cursor: str, limit: int, kept: str) -> tuple[int, int]:
    """The page a cursor starts and the last id before it; 400 unless this list wrote it for
    these filters and this limit."""
    if "page" in request.args:
        abort(400, message="Send page or cursor, not both")
    position, _, signature = cursor.partition(".")
    try:
        page_text, after_text = base64.urlsafe_b64decode(position + "=" * (-len(position) % 4)).split(b".")
        page, after = int(page_text), int(after_text)
    except (binascii.Error, ValueError):
        abort(400, message="The cursor is not one this list gave")
    if not (1 < page <= MAX_PAGE and after >= 0) or not hmac.compare_digest(
        signature, _signature(page, after, limit, kept)
    ):
        abort(400, message="The cursor is not one this list gave for these filters and this limit")
    return page, after


def links(page: int, limit: int, total: int, kept: str, next_cursor: str | None = None) -> str:
    """RFC 8288 links from this page to the first, previous, next and last ones that exist,
    with the request's ``kept`` arguments; the next page's by ``next_cursor`` when given."""
    last = max(1, math.ceil(total / limit))
    pages: dict[str, str] = {"first": f"page=1&limit={limit}"}
    if page > 1:
        pages["prev"] = f"page={min(page - 1, last)}&limit={limit}"
    if page < last:
        pages["next"] = (
            f"cursor={next_cursor}&limit={limit}" if next_cursor else f"page={page + 1}&limit={limit}"
        )
    pages["last"] = f"page={last}&limit={limit}"
    path = quote(request.script_root + request.path)
    query = f"{path}?{kept}&" if kept else f"{path}?"
    return ", ".join(f'<{query}{target}>; rel="{relation}"' for relation, target in pages.items())
