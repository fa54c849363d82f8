"""Item payloads: what clients send and what they get back."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.fields import NAME as NAME_PATTERN
from webapp.fields import TEXT
from webapp.models import Item
from webapp.pagination import PaginationArgsSchema, page_schema

NAME = [validate.Length(min=1, max=Item.NAME_LENGTH), NAME_PATTERN]
DESCRIPTION = [validate.Length(max=Item.DESCRIPTION_LENGTH), TEXT]


class ItemSchema(Schema):
    """An item; ``name`` and ``description`` are what a client sends to create one."""

    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)
    user_id = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ItemUpdateSchema(Schema):
    """Any subset of name and description; a null description clears it."""

    name = fields.String(validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)


class ItemQueryArgsSchema(PaginationArgsSchema):
    name = fields.String(
        validate=validate.Length(max=Item.NAME_LENGTH), metadata={"description": "Substring of the name"}
    )
    description = fields.String(
        validate=validate.Length(max=Item.DESCRIPTION_LENGTH),
        metadata={"description": "Substring of the description"},
    )


ItemPageSchema = page_schema("ItemPage", "items", ItemSchema)
