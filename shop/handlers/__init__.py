"""The work of each command and event, one module per context."""
