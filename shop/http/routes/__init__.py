"""Gateway routes, one module per context."""
