"""Role payloads."""

from marshmallow import Schema, fields


class RoleSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "admin"})
