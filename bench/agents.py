"""The stream agents' consumer group seen from outside, for the runs that wait until it has read
everything (the inventory benchmark, the chaos run's settling)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from shop.bootstrap import kafka_config
from shop.processes.streams import CONSUMER_GROUP
from shop.settings import Settings


def group_lag(settings: Settings, topics: Iterable[str]) -> int:
    """Records of `topics` the agents' consumer group has not committed yet (without joining it)."""
    consumer = Consumer(kafka_config(settings, **{"group.id": CONSUMER_GROUP, "enable.auto.commit": False}))
    try:
        partitions = []
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions += [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        lag = 0
        for tp in consumer.committed(partitions, timeout=10):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    finally:
        consumer.close()
