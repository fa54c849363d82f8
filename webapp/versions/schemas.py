"""Version payloads."""

from marshmallow import fields

from webapp.fields import ResponseSchema


class VersionSchema(ResponseSchema):
    id = fields.Integer()
    version = fields.String(metadata={"example": "1.0"})
    supported = fields.Boolean()
    deprecated_at = fields.DateTime(
        allow_none=True, metadata={"description": "When it was deprecated; null if it is not"}
    )
    sunset = fields.Date(
        allow_none=True, metadata={"description": "From this day (UTC) it is answered 426; null if none"}
    )
