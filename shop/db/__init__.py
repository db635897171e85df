"""Databases: pools, primary/replica routing, migrations, outbox and inbox."""
