"""Every stream agent, by the topic it consumes, on one process's dependencies."""

from __future__ import annotations

from functools import partial

from shop.dependencies import Dependencies
from shop.schemas.events import PRODUCT_CREATED, PRODUCT_UPDATED
from shop.schemas.orders import ORDER_CANCELLED, ORDER_CREATED, ORDER_PAID, STOCK_REJECTED, STOCK_RESERVED
from shop.streams.price_feed import PRODUCT_SCHEMA_BY_TOPIC, price_feed_agent_for
from shop.streams.runner import Agent, BatchAgent
from shop.streams.saga import SagaAgents

# The topics the agents consume, in the consumer group of `shop run streams`.
CONSUMED_TOPICS = (
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    ORDER_CREATED,
    ORDER_CANCELLED,
    ORDER_PAID,
    STOCK_RESERVED,
    STOCK_REJECTED,
)


def stream_agents(needs: Dependencies) -> tuple[dict[str, Agent], dict[str, BatchAgent]]:
    """The agent of each consumed topic, and the agents that may take several records of their
    topic in one transaction (shop.streams.lanes)."""
    saga = SagaAgents(needs.unit_of_work, needs.clock)
    price_feed = price_feed_agent_for(PRODUCT_SCHEMA_BY_TOPIC, partial(needs.unit_of_work, "orders"))
    agents: dict[str, Agent] = {
        PRODUCT_CREATED: price_feed,
        PRODUCT_UPDATED: price_feed,
        ORDER_CREATED: saga.inventory,
        ORDER_CANCELLED: saga.settlement,
        ORDER_PAID: saga.settlement,
        STOCK_RESERVED: saga.stock_outcome,
        STOCK_REJECTED: saga.stock_outcome,
    }
    batch_agents: dict[str, BatchAgent] = {
        ORDER_CREATED: saga.inventory_batch,
        ORDER_CANCELLED: saga.settlement_batch,
        ORDER_PAID: saga.settlement_batch,
        STOCK_RESERVED: saga.stock_outcome_batch,
        STOCK_REJECTED: saga.stock_outcome_batch,
    }
    return agents, batch_agents
