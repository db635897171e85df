"""Versioned message schemas: event envelopes on Kafka (`events`) and API answers (`views`)."""
