"""User payloads: what clients send and what they get back."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.fields import TEXT, FullMatch, StrictBoolean
from webapp.models import Role, User
from webapp.pagination import PaginationArgsSchema, page_schema

# ASCII only: no look-alike letters from other scripts (homoglyph impersonation).
USERNAME = [
    validate.Length(min=1, max=User.USERNAME_LENGTH),
    FullMatch(r"^[A-Za-z0-9_.@+-]+$", error="Use letters A-Z, digits and . @ + - _ only."),
]
# A password a user chooses: 12 to 128 characters (OWASP ASVS V2.1.1, V2.1.2); generated ones
# have 24.
PASSWORD = [validate.Length(min=12, max=128), TEXT]
ROLE = validate.OneOf(list(Role.NAMES), error="Unknown role.")


class UserSchema(Schema):
    """A user's public fields; ``username`` and ``role_id`` are what an admin sends to create one."""

    id = fields.Integer(dump_only=True)
    username = fields.String(required=True, validate=USERNAME)
    role_id = fields.Integer(required=True, strict=True, validate=ROLE)
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
    current_password = fields.String(
        load_only=True,
        validate=[validate.Length(min=1, max=1024), TEXT],
        metadata={"description": "The account's password now: needed to change one's own password"},
    )
    role_id = fields.Integer(strict=True, validate=ROLE)
    activated = StrictBoolean()


class UserQueryArgsSchema(PaginationArgsSchema):
    username = fields.String(
        validate=validate.Length(max=User.USERNAME_LENGTH),
        metadata={"description": "Substring of the username"},
    )
    activated = fields.Boolean(
        load_default=True, metadata={"description": "Active accounts (default) or deactivated ones"}
    )


UserPageSchema = page_schema("UserPage", "users", UserSchema)
