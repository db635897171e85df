"""Every stream agent, by the topic it consumes. Context agents (inventory, price feed) are added
here as they land."""

from __future__ import annotations

from shop.schemas.events import PRODUCT_CREATED, PRODUCT_UPDATED
from shop.streams.price_feed import price_feed_agent
from shop.streams.runner import Agent

AGENTS: dict[str, Agent] = {
    PRODUCT_CREATED: price_feed_agent,
    PRODUCT_UPDATED: price_feed_agent,
}
