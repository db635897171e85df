"""Dramatiq actors, one module per context. Importing `shop.actors.registry` registers them all."""
