"""Authentication payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=255))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=512))


class TokenSchema(Schema):
    """A session's token pair."""

    id = fields.Integer(metadata={"description": "The user's id"})
    access_token = fields.String()
    refresh_token = fields.String()
    expires = fields.Integer(metadata={"description": "Access token lifetime, in seconds"})
    token_type = fields.String(metadata={"example": "bearer"})
