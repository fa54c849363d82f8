"""User payloads: what clients send and what they get back."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from webapp.fields import TEXT, FullMatch, ResponseSchema, StrictBoolean, Substring
from webapp.models import Role, User
from webapp.openapi_conventions import COMPONENT, ROLE_ID
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


def role_id(**kwargs) -> fields.Integer:
    """A role's id, documented as the shared RoleId component."""
    return fields.Integer(strict=True, validate=ROLE, metadata={COMPONENT: ROLE_ID}, **kwargs)


class UserCreateSchema(Schema):
    """What an admin sends to create a user (the server generates the password)."""

    username = fields.String(required=True, validate=USERNAME)
    role_id = role_id(required=True)


class UserSchema(ResponseSchema):
    """A user's public fields."""

    id = fields.Integer()
    username = fields.String()
    role_id = role_id()
    activated = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class UserCreatedSchema(UserSchema):
    """A new user with its generated password, shown this once."""

    password = fields.String()


class UserUpdateSchema(Schema):
    """Any subset of the changeable fields."""

    username = fields.String(validate=USERNAME)
    password = fields.String(load_only=True, validate=PASSWORD)
    current_password = fields.String(
        load_only=True,
        validate=[validate.Length(min=1, max=1024), TEXT],
        metadata={"description": "The account's password now: needed to change one's own password"},
    )
    role_id = role_id()
    activated = StrictBoolean()


class UserQueryArgsSchema(PaginationArgsSchema):
    username = Substring(User.USERNAME_LENGTH, "the username")
    activated = fields.Boolean(
        load_default=True, metadata={"description": "Active accounts (default) or deactivated ones"}
    )


UserPageSchema = page_schema("UserPage", "users", UserSchema)
