"""marshmallow pieces shared by the resource schemas, strict where JSON is strict: fields,
patterns, and the bases of answers and PATCH bodies."""

from __future__ import annotations

import re

from marshmallow import Schema, fields, validate

_QUERY_INTEGER = re.compile(r"-?[0-9]+")


class StrictBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false``, not "no" or 0."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class QueryInteger(fields.Integer):
    """An integer as a URL spells it: ASCII digits, an optional minus sign, nothing else.
    (``int()`` alone would also take " 5", "5\\x85", "+5", "5_0" and other scripts' digits.)"""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or _QUERY_INTEGER.fullmatch(value) is None:
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class Substring(fields.String):
    """A list filter: the rows whose ``what`` contains this text, in any case. Its longest
    value is the column's, and the document says what it filters."""

    def __init__(self, max_length: int, what: str, **kwargs):
        super().__init__(
            validate=validate.Length(max=max_length),
            metadata={"description": f"Substring of {what}, in any case"},
            **kwargs,
        )


class FullMatch(validate.Regexp):
    """The whole value matches ``pattern``. The OpenAPI document shows the same pattern,
    so clients and fuzzers see exactly the rule the server applies (``re.match`` alone
    would let a trailing newline through ``$``)."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise validate.ValidationError(self._format_error(value))
        return value


# Whitespace and control characters spelled out, so Python and ECMAScript (the OpenAPI
# document's regex dialect) agree on every character; their \s differ at the edges.
_SPACE = r"\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# A name: no control characters, no whitespace at either end (look-alike names).
NAME = FullMatch(
    f"^[^{_SPACE}{_CONTROL}](?:[^{_CONTROL}]*[^{_SPACE}{_CONTROL}])?$",
    error="Must not start or end with whitespace or contain control characters.",
)

# Free text (passwords, tokens, descriptions): anything but NUL, which ends a string in C and
# which no column of text should hold.
TEXT = FullMatch(r"^[^\x00]*$", error="Must not contain NUL characters.")


class ResponseSchema(Schema):
    """What the server sends: every field is in every answer (null where it may be), so the
    document lists all of them as required and a client never tests for an absent one."""


def update_schema(create: type[Schema]) -> type[Schema]:
    """The body of a PATCH, made from the body of a POST: any subset of its fields, each
    validated as on creation (a null clears a field that allows one). ``ItemCreateSchema``
    gives ``ItemUpdateSchema``, documented as ``ItemUpdate``."""
    optional = create().declared_fields  # the instance's own copies of the class's fields
    for field in optional.values():
        field.required = False
    name = create.__name__.replace("Create", "Update")
    doc = f"Any subset of the fields of {create.__name__.removesuffix('Schema')}; a null clears one."
    return type(name, (create,), {**optional, "__doc__": doc, "__module__": create.__module__})


class MessageSchema(ResponseSchema):
    """A confirmation: ``{"detail": "..."}``."""

    detail = fields.String(metadata={"example": "Item deleted"})
