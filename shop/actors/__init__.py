"""Dramatiq actors, one module per context, declared on a broker by `shop.actors.registry`."""
