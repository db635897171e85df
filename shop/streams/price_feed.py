"""The price-feed agent: product events from the catalog into the orders database's prices.

A thin entry point: decode the record's value, call the handler. A value that cannot be decoded
raises a `PoisonMessage` (dead-lettered by the runner); a database failure propagates and the runner
retries the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from confluent_kafka import Message

from shop.db.unit_of_work import UnitOfWork
from shop.handlers.price_feed import handle_product_event
from shop.schemas.events import PRODUCT_CREATED, PRODUCT_UPDATED, SCHEMAS, decode_event
from shop.streams.runner import Agent

# Which schema each consumed topic carries. On the project's topics the schema is the topic's name.
PRODUCT_SCHEMA_BY_TOPIC: Mapping[str, str] = {
    PRODUCT_CREATED: PRODUCT_CREATED,
    PRODUCT_UPDATED: PRODUCT_UPDATED,
}


def price_feed_agent_for(
    schema_by_topic: Mapping[str, str],
    unit_of_work: Callable[[], UnitOfWork],
) -> Agent:
    """The agent for the topics of `schema_by_topic` (tests map scratch topics to product schemas),
    writing through units of work on the orders database."""
    unknown = sorted(set(schema_by_topic.values()) - set(SCHEMAS))
    if unknown:
        raise ValueError(f"no event schema named {', '.join(unknown)}")
    schemas = dict(schema_by_topic)

    def price_feed_agent(message: Message) -> None:
        topic = message.topic()
        if topic not in schemas:
            # A wiring mistake, not a bad record: fail (the runner retries and logs) rather than
            # dead-letter every record of the topic.
            raise LookupError(f"the price feed is not wired for topic {topic!r}")
        event = decode_event(topic, message.value(), expected_schema=schemas[topic])
        handle_product_event(event, unit_of_work())

    return price_feed_agent
