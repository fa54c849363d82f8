"""Items: any account reads them all; the owner or an admin changes one."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import abort

from webapp.conditional import check_if_match, with_etag
from webapp.database import db
from webapp.fields import MessageSchema
from webapp.items.schemas import (
    ItemCreateSchema,
    ItemPageSchema,
    ItemQueryArgsSchema,
    ItemSchema,
    ItemUpdateSchema,
)
from webapp.models import Item
from webapp.openapi import Blueprint
from webapp.pagination import LINK_HEADER, page_of
from webapp.permissions import get_for_update, login_required, require_owner_or_admin

blp = Blueprint("items", __name__, url_prefix="/items", description="Items, owned by users")


@blp.route("")
class Items(MethodView):
    @login_required
    @blp.arguments(ItemQueryArgsSchema, location="query")
    @blp.response(200, ItemPageSchema, headers=LINK_HEADER)
    def get(self, args):
        """List items

        Filters match a case-insensitive substring; pages start at 1."""
        filters = {name: args[name] for name in ("name", "description") if name in args}
        return page_of(Item.search(**filters), args, key="items")

    @login_required
    @blp.arguments(ItemCreateSchema)
    @blp.response(201, ItemSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create an item

        The caller owns it. Names are unique across all items."""
        item = Item.create(g.caller.id, **data)
        db.session.commit()
        return item


@blp.route("/<id:item_id>")
class ItemsById(MethodView):
    @login_required
    @blp.response(200, ItemSchema)
    @with_etag
    def get(self, item_id):
        """Get an item

        With its ETag; If-None-Match naming it is answered 304 with no body."""
        return Item.read(item_id) or abort(404, message="Item not found")

    @login_required
    @blp.arguments(ItemUpdateSchema)
    @blp.response(200, ItemSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    @with_etag
    def patch(self, data, item_id):
        """Update an item

        Admin or owner. Sending the current name again is not a conflict. With If-Match, only
        while the item is at that version (412 otherwise, nothing changed)."""
        item = get_for_update(Item, item_id)
        require_owner_or_admin(item.user_id, "item")
        check_if_match(item.version)
        item.update(data)
        db.session.commit()
        return item

    @login_required
    @blp.response(200, MessageSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @with_etag
    def delete(self, item_id):
        """Delete an item

        Admin or owner. With If-Match, only while the item is at that version."""
        item = get_for_update(Item, item_id)
        require_owner_or_admin(item.user_id, "item")
        check_if_match(item.version)
        db.session.delete(item)
        db.session.commit()
        return {"detail": "Item deleted"}
