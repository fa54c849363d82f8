"""Role payloads."""

from marshmallow import fields

from webapp.fields import ResponseSchema


class RoleSchema(ResponseSchema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "admin"})
