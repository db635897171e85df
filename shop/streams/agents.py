"""Every stream agent, by the topic it consumes."""

from __future__ import annotations

from shop.schemas.events import PRODUCT_CREATED, PRODUCT_UPDATED
from shop.schemas.orders import ORDER_CANCELLED, ORDER_CREATED, ORDER_PAID, STOCK_REJECTED, STOCK_RESERVED
from shop.streams.price_feed import price_feed_agent
from shop.streams.runner import Agent, BatchAgent
from shop.streams.saga import (
    inventory_agent,
    inventory_batch_agent,
    inventory_settlement_agent,
    inventory_settlement_batch_agent,
    stock_outcome_agent,
    stock_outcome_batch_agent,
)

AGENTS: dict[str, Agent] = {
    PRODUCT_CREATED: price_feed_agent,
    PRODUCT_UPDATED: price_feed_agent,
    ORDER_CREATED: inventory_agent,
    ORDER_CANCELLED: inventory_settlement_agent,
    ORDER_PAID: inventory_settlement_agent,
    STOCK_RESERVED: stock_outcome_agent,
    STOCK_REJECTED: stock_outcome_agent,
}

# Agents that may take several records of their topic in one transaction (shop.streams.lanes).
BATCH_AGENTS: dict[str, BatchAgent] = {
    ORDER_CREATED: inventory_batch_agent,
    ORDER_CANCELLED: inventory_settlement_batch_agent,
    ORDER_PAID: inventory_settlement_batch_agent,
    STOCK_RESERVED: stock_outcome_batch_agent,
    STOCK_REJECTED: stock_outcome_batch_agent,
}
