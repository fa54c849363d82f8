"""Authentication payloads."""

from __future__ import annotations

from flask import g
from marshmallow import Schema, fields, validate

from webapp.fields import TEXT, ResponseSchema


class LoginSchema(Schema):
    username = fields.String(required=True, validate=[validate.Length(min=1, max=255), TEXT])
    password = fields.String(required=True, load_only=True, validate=[validate.Length(min=1, max=1024), TEXT])


class RefreshSchema(Schema):
    refresh_token = fields.String(
        required=True, load_only=True, validate=[validate.Length(min=1, max=512), TEXT]
    )


class TokenSchema(ResponseSchema):
    """A session's token pair."""

    id = fields.Integer(metadata={"description": "The user's id"})
    access_token = fields.String()
    refresh_token = fields.String()
    expires = fields.Integer(metadata={"description": "Access token lifetime, in seconds"})
    token_type = fields.String(metadata={"example": "bearer"})


class SessionSchema(ResponseSchema):
    """A login session (a device): never its tokens or their digests."""

    id = fields.Integer()
    created_at = fields.DateTime()
    last_refreshed_at = fields.DateTime(
        allow_none=True, metadata={"description": "Null until its first refresh"}
    )
    user_agent = fields.String(allow_none=True, metadata={"description": "The device's User-Agent at login"})
    current = fields.Method(
        "is_current", metadata={"type": "boolean", "description": "The session of the token used"}
    )

    def is_current(self, session) -> bool:
        return session.id == g.caller.session_id
