"""Version payloads."""

from marshmallow import Schema, fields


class VersionSchema(Schema):
    id = fields.Integer()
    version = fields.String(metadata={"example": "1.0"})
    supported = fields.Boolean()
