"""User payloads: what clients send and what they get back."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from webapp.models import Role, User
from webapp.pagination import PaginationArgsSchema, page_schema

USERNAME = [
    validate.Length(min=1, max=User.USERNAME_LENGTH),
    validate.Regexp(r"[\w.@+-]+\Z", error="Use letters, digits and . @ + - _ only."),
]
PASSWORD = validate.Length(min=8, max=256)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, not "no" or 0."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def known_role(role_id: int) -> None:
    if not Role.exists(role_id):
        raise ValidationError("Unknown role.")


class UserSchema(Schema):
    """A user's public fields; ``username`` and ``role_id`` are what an admin sends to create one."""

    id = fields.Integer(dump_only=True)
    username = fields.String(required=True, validate=USERNAME)
    role_id = fields.Integer(required=True, strict=True, validate=known_role)
    activated = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class UserCreatedSchema(UserSchema):
    """A new user with its generated password, shown this once."""

    password = fields.String(dump_only=True)


class UserUpdateSchema(Schema):
    """Any subset of the changeable fields."""

    username = fields.String(validate=USERNAME)
    password = fields.String(load_only=True, validate=PASSWORD)
    role_id = fields.Integer(strict=True, validate=known_role)
    activated = StrictBoolean()


class UserQueryArgsSchema(PaginationArgsSchema):
    username = fields.String(
        validate=validate.Length(max=User.USERNAME_LENGTH),
        metadata={"description": "Substring of the username"},
    )
    activated = fields.Boolean(load_default=True)


UserPageSchema = page_schema("UserPage", "users", UserSchema)
