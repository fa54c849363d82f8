"""Item payloads: what clients send and what they get back."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.fields import NAME as NAME_PATTERN
from webapp.fields import TEXT, ResponseSchema, Substring, update_schema
from webapp.models import Item
from webapp.pagination import PaginationArgsSchema, page_schema

NAME = [validate.Length(min=1, max=Item.NAME_LENGTH), NAME_PATTERN]
DESCRIPTION = [validate.Length(max=Item.DESCRIPTION_LENGTH), TEXT]


class ItemCreateSchema(Schema):
    """What a client sends to create an item."""

    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=DESCRIPTION)


class ItemSchema(ResponseSchema):
    """An item."""

    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    user_id = fields.Integer(metadata={"description": "The owner's id"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ItemQueryArgsSchema(PaginationArgsSchema):
    name = Substring(Item.NAME_LENGTH, "the name")
    description = Substring(Item.DESCRIPTION_LENGTH, "the description")


ItemUpdateSchema = update_schema(ItemCreateSchema)
ItemPageSchema = page_schema("ItemPage", "items", ItemSchema)
