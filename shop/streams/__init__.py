"""Kafka: topics, and the stream agents that consume them."""
