"""Feed product prices to the order side: each product event from the catalog updates the orders
database's copy of that product's price (`product_prices`), so orders are priced without reading
another context's tables."""

from __future__ import annotations

import logging

from shop.db import price_feed as db
from shop.db.inbox import record_handled
from shop.db.unit_of_work import UnitOfWork
from shop.domain.products import STOCK_ONLY_EVENTS
from shop.schemas.events import ProductEventV1

log = logging.getLogger(__name__)

CONSUMER = "price-feed"


def handle_product_event(event: ProductEventV1, uow: UnitOfWork, consumer: str = CONSUMER) -> bool:
    """Applies one product event in one transaction; False when this consumer had handled the
    event before (nothing is done), True otherwise.

    A stock-only event (every reservation, release and sale is one: most of the catalog's events
    under load) carries no price news, so it costs no transaction at all.

    Events of one product arrive in order per partition, but `product.created` and
    `product.updated` are two topics and any event may be delivered again later, so the price is
    written only when the event's version is newer than the stored one.
    """
    if event.type in STOCK_ONLY_EVENTS:
        return True
    with uow:
        if not record_handled(uow.conn, consumer, event.event_id):
            return False
        snapshot = event.data
        applied = db.upsert_product_price(
            uow.conn,
            event.product_id,
            snapshot.sku,
            snapshot.name,
            snapshot.price_cents,
            snapshot.currency,
            event.version,
        )
    if not applied:
        log.info(
            "price feed: %s %s is version %d, older than the stored price; kept the stored one",
            event.type,
            event.product_id,
            event.version,
        )
    return True
