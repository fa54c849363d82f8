"""Items: any account reads them all; the owner or an admin changes one."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import abort

from webapp.conditional import ETAG_HEADER, IF_MATCH, IF_NONE_MATCH, etag, respond
from webapp.extensions import db
from webapp.items.schemas import ItemPageSchema, ItemQueryArgsSchema, ItemSchema, ItemUpdateSchema
from webapp.listing import Listing
from webapp.models import Item
from webapp.openapi import Blueprint, MessageSchema, document
from webapp.pagination import LINK_HEADER, page_of
from webapp.permissions import get_owned_or_404, login_required

blp = Blueprint("items", __name__, url_prefix="/items", description="Items, owned by users")


@blp.route("")
class Items(MethodView):
    @login_required
    @blp.arguments(ItemQueryArgsSchema, location="query")
    @blp.response(200, ItemPageSchema, headers=LINK_HEADER)
    def get(self, args):
        """List items

        Filters match a case-insensitive substring; pages start at 1.
        """
        listing = Item.LISTING
        if "name" in args or "description" in args:
            query = Item.listing()
            if "name" in args:
                query = query.where(Item.name.icontains(args["name"], autoescape=True))
            if "description" in args:
                query = query.where(Item.description.icontains(args["description"], autoescape=True))
            listing = Listing.of(query)
        return page_of(listing, args, key="items")

    @login_required
    @blp.arguments(ItemSchema)
    @blp.response(201, ItemSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create an item

        The caller owns it. Names are unique across all items.
        """
        item = Item.create(g.current_user.id, **data)
        db.session.commit()
        return item


@blp.route("/<id:item_id>")
class ItemsById(MethodView):
    @login_required
    @document(responses=(304,), parameters=(IF_NONE_MATCH,))
    @blp.response(200, ItemSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, item_id):
        """Get an item

        With its ETag; If-None-Match naming it is answered 304 with no body.
        """
        item = Item.read(item_id) or abort(404, message="Item not found")
        return respond(item, item["version"])

    @login_required
    @document(responses=(412,), parameters=(IF_MATCH,))
    @blp.arguments(ItemUpdateSchema)
    @blp.response(200, ItemSchema, headers=ETAG_HEADER)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, data, item_id):
        """Update an item

        Admin or owner. Sending the current name again is not a conflict. With If-Match, only
        while the item is at that version (412 otherwise, nothing changed).
        """
        item = get_owned_or_404(Item, item_id)
        for field, value in data.items():
            setattr(item, field, value)
        db.session.commit()
        return item, {"ETag": etag(item.version)}

    @login_required
    @document(responses=(412,), parameters=(IF_MATCH,))
    @blp.response(200, MessageSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, item_id):
        """Delete an item

        Admin or owner. With If-Match, only while the item is at that version.
        """
        db.session.delete(get_owned_or_404(Item, item_id))
        db.session.commit()
        return {"detail": "Item deleted"}
